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
	t.Run("readable keys refused, not tightened", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			path func(string) string
			mode fs.FileMode
			want string // "" for accepted
		}{
			{"token key 0644", rootdir.TokenKey, 0o644, "derive every student's Jupyter token"},
			{"token key 0640", rootdir.TokenKey, 0o640, "chmod 600"},
			{"session key 0604", rootdir.ProxySessionKey, 0o604, "forge a front-door session"},
			{"token key 0600", rootdir.TokenKey, 0o600, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				root := t.TempDir()
				key := tc.path(root)
				if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(key, tc.mode); err != nil {
					t.Fatal(err)
				}
				err := PrepareRoot(root, slog.New(slog.DiscardHandler))
				if tc.want == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "chmod 600 "+key) {
					t.Fatalf("err = %v, want a refusal saying %q and chmod 600 %s", err, tc.want, key)
				}
				if m := mode(key); m != tc.mode {
					t.Errorf("key mode %s, want it left at %s", m, tc.mode)
				}
			})
		}
	})
}
