package atomicfile_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
)

func TestWriteJSON(t *testing.T) {
	type doc struct{ N int }
	tests := []struct {
		name     string
		v        any
		before   string // content of the file before, "" for none
		want     string // content after
		wantMode os.FileMode
		wantErr  bool
	}{
		{name: "new file, missing folder", v: doc{1}, want: "{\n  \"N\": 1\n}\n", wantMode: 0o600},
		{name: "replaces, private", v: doc{2}, before: "old", want: "{\n  \"N\": 2\n}\n", wantMode: 0o600},
		{name: "unencodable leaves the old file", v: math.Inf(1), before: "old", want: "old", wantMode: 0o644, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			p := filepath.Join(dir, "x.json")
			if tt.before != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := atomicfile.WriteJSON(p, tt.v)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			got, rerr := os.ReadFile(p)
			if rerr != nil || string(got) != tt.want {
				t.Fatalf("file = %q (%v), want %q", got, rerr, tt.want)
			}
			if !tt.wantErr && !json.Valid(got) {
				t.Errorf("not JSON: %q", got)
			}
			if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != tt.wantMode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.wantMode)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("left in the folder: %v", entries)
			}
		})
	}
}
