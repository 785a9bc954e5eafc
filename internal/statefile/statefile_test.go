package statefile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	tests := []struct {
		name string
		perm os.FileMode
		pre  bool // a file exists already, with another mode
	}{
		{"new private file", 0o600, false},
		{"new shared file", 0o644, false},
		{"replaces a world-readable file with a private one", 0o600, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "state", "x.json")
			if tt.pre {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("{}"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteJSON(p, map[string]int{"a": 1}, tt.perm); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.perm)
			}
			b, _ := os.ReadFile(p)
			var got map[string]int
			if err := json.Unmarshal(b, &got); err != nil || got["a"] != 1 {
				t.Errorf("content %q (%v)", b, err)
			}
			ents, _ := os.ReadDir(filepath.Dir(p))
			if len(ents) != 1 {
				t.Errorf("directory holds %d files, want only x.json (no temporary left)", len(ents))
			}
		})
	}
}

func TestWriteJSONUnencodableChangesNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	if err := os.WriteFile(p, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(p, map[string]any{"f": func() {}}, 0o600); err == nil {
		t.Fatal("no error for a value JSON cannot encode")
	}
	if b, _ := os.ReadFile(p); string(b) != `{"a":1}` {
		t.Errorf("file changed to %q", b)
	}
}
