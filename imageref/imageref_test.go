package imageref

import (
	"errors"
	"testing"
)

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

func TestListRaced(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`Error response from daemon: locating image with ID "3273331daf1f": image not known`), true},
		{errors.New("Error response from daemon: image not known"), false},
		{errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := ListRaced(tt.err); got != tt.want {
			t.Errorf("ListRaced(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
