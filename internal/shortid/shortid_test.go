package shortid_test

import (
	"testing"

	"github.com/nbhosting/nbh-sync/internal/shortid"
)

func TestOf(t *testing.T) {
	tests := []struct{ id, want string }{
		{"", ""},
		{"abc", "abc"},
		{"0123456789abcdef0123", "0123456789ab"},
		{"sha256:0123456789abcdef0123", "0123456789ab"},
		{"sha256:", ""},
		// A registry reference by digest: its digest, not the registry's
		// host (which was "127.0.0.1:50" for every image).
		{"127.0.0.1:5000/nbh-0123456789/intro@sha256:fedcba9876543210ff", "fedcba987654"},
		{"reg.example.org/intro@sha256:abc", "abc"},
	}
	for _, tt := range tests {
		if got := shortid.Of(tt.id); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestImages(t *testing.T) {
	const (
		d1 = "sha256:1111111111111111aa"
		d2 = "sha256:2222222222222222bb"
	)
	tests := []struct{ a, b, wantA, wantB string }{
		{d1, d2, "111111111111", "222222222222"},
		{"127.0.0.1:5000/nbh-0123456789/i@" + d1, "127.0.0.1:5000/nbh-0123456789/i@" + d2, "111111111111", "222222222222"},
		// The same build pushed under another repository: only the whole
		// references tell them apart.
		{"127.0.0.1:5000/i@" + d1, "127.0.0.1:5000/nbh-0123456789/i@" + d1, "127.0.0.1:5000/i@" + d1, "127.0.0.1:5000/nbh-0123456789/i@" + d1},
		{"", d2, "", "222222222222"},
	}
	for _, tt := range tests {
		if a, b := shortid.Images(tt.a, tt.b); a != tt.wantA || b != tt.wantB {
			t.Errorf("Images(%q, %q) = %q, %q; want %q, %q", tt.a, tt.b, a, b, tt.wantA, tt.wantB)
		}
	}
}
