package atomicfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		perm os.FileMode
		v    any
	}{
		{"state/a.json", 0o600, map[string]int{"n": 1}},
		{"state/a.json", 0o600, map[string]int{"n": 2}}, // replaced whole
		{"b.json", 0o644, []string{"x"}},
	} {
		p := filepath.Join(dir, tt.name)
		if err := WriteJSON(p, tt.v, tt.perm); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tt.perm {
			t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode().Perm(), tt.perm)
		}
		b, _ := os.ReadFile(p)
		want, _ := json.MarshalIndent(tt.v, "", "  ")
		if string(b) != string(want)+"\n" {
			t.Errorf("%s: content %q, want %q", tt.name, b, want)
		}
	}
	// No temporary file is left behind.
	left, _ := filepath.Glob(filepath.Join(dir, "state", "*.tmp-*"))
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// A value that cannot be encoded changes nothing.
	p := filepath.Join(dir, "state", "a.json")
	if err := WriteJSON(p, func() {}, 0o600); err == nil {
		t.Error("encoded a func")
	}
	if b, _ := os.ReadFile(p); string(b) != "{\n  \"n\": 2\n}\n" {
		t.Errorf("after a failed write: %q", b)
	}
}
