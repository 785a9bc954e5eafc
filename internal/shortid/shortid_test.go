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
	}
	for _, tt := range tests {
		if got := shortid.Of(tt.id); got != tt.want {
			t.Errorf("Of(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
