package daemon

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/rootdir"
)

func TestPrepareRootModes(t *testing.T) {
	mode := func(p string) fs.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	t.Run("created", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		if err := PrepareRoot(root, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		if m := mode(root); m != 0o750 {
			t.Errorf("ROOT mode %s, want 0750", m)
		}
		if m := mode(filepath.Join(root, "state")); m != 0o700 {
			t.Errorf("ROOT/state mode %s, want 0700", m)
		}
		// The history store, made after, is the daemon's only.
		h, err := history.Open(rootdir.History(root), history.Options{})
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		if m := mode(rootdir.History(root)); m != 0o600 {
			t.Errorf("history store mode %s, want 0600", m)
		}
	})
	t.Run("tightened", func(t *testing.T) {
		root := t.TempDir()
		state := filepath.Join(root, "state")
		if err := os.MkdirAll(state, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(root, 0o777); err != nil {
			t.Fatal(err)
		}
		old := filepath.Join(state, "config.json")
		if err := os.WriteFile(old, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		if err := PrepareRoot(root, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]fs.FileMode{root: 0o750, state: 0o700, old: 0o600} {
			if m := mode(p); m != want {
				t.Errorf("%s: mode %s, want %s", p, m, want)
			}
		}
		if n := strings.Count(logs.String(), "tightened permissions"); n != 3 {
			t.Errorf("%d log lines say what was tightened, want 3:\n%s", n, logs.String())
		}
	})
}
