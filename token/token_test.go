package token

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nbhosting/nbh-sync/rootdir"
)

func TestTokensSurviveARestart(t *testing.T) {
	root := t.TempDir()
	first, err := New(rootdir.TokenKey(root)).For("flot", "alice")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(rootdir.TokenKey(root))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v (want mode 0600)", st, err)
	}
	// A new Source on the same key is what a restarted daemon has.
	again, err := New(rootdir.TokenKey(root)).For("flot", "alice")
	if err != nil || again != first {
		t.Fatalf("after restart: %q, %v; want %q", again, err, first)
	}
	if len(first) != 64 {
		t.Errorf("token %q: want 64 hex digits", first)
	}
	other, _ := New(rootdir.TokenKey(t.TempDir())).For("flot", "alice")
	if other == first {
		t.Error("two sites with different keys give the same token")
	}
}

func TestTokensDiffer(t *testing.T) {
	s := New(rootdir.TokenKey(t.TempDir()))
	pairs := [][2]string{{"flot", "alice"}, {"flot", "bob"}, {"intro", "alice"}, {"a-b", "c"}, {"a", "b-c"}, {"a", "b\x00c"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		tok, err := s.For(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		if q, dup := seen[tok]; dup {
			t.Errorf("%v and %v have the same token", p, q)
		}
		seen[tok] = p
	}
}

func TestBadKeysAreRefused(t *testing.T) {
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable by others", strings.Repeat("ab", 32), 0o644, "chmod 600"},
		{"not hex", "not a key at all", 0o600, "in hex"},
		{"too short", "abcd", 0o600, "at least 16 bytes"},
		{"empty", "", 0o600, "read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "state"), 0o700)
			if err := os.WriteFile(rootdir.TokenKey(root), []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(rootdir.TokenKey(root), tt.mode)
			_, err := New(rootdir.TokenKey(root)).For("c", "s")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			// The bad key is left as it was, for the admin to look at.
			if b, _ := os.ReadFile(rootdir.TokenKey(root)); string(b) != tt.content {
				t.Errorf("key file changed to %q", b)
			}
		})
	}
}

func TestConcurrentFirstUseMakesOneKey(t *testing.T) {
	root := t.TempDir()
	const n = 16
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = New(rootdir.TokenKey(root)).For("c", "s") })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("source %d: %q, %v; source 0: %q", i, toks[i], errs[i], toks[0])
		}
	}
	left, _ := filepath.Glob(filepath.Join(root, "state", "*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
