package imageref

import "testing"

func TestFamiliar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"flot:latest", "flot:latest"},
		{"docker.io/library/flot:latest", "flot:latest"},
		{"localhost/flot:latest", "flot:latest"},
		{"docker.io/nbhosting/scipy-notebook:latest", "nbhosting/scipy-notebook:latest"},
		{"localhost/nbhosting/scipy-notebook:0d2b", "nbhosting/scipy-notebook:0d2b"},
		{"registry.example.org:5000/flot:latest", "registry.example.org:5000/flot:latest"},
		{"localhost:5000/flot:latest", "localhost:5000/flot:latest"},
	}
	for _, tt := range tests {
		if got := Familiar(tt.in); got != tt.want {
			t.Errorf("Familiar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
