package configrepo

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
)

// A rejected config head is parsed once, not on every load and plan: a
// hostile courses.yaml may be costly even to refuse.
func TestRejectedConfigParsedOnce(t *testing.T) {
	var parses atomic.Int64
	orig := parse
	parse = func(file string, data []byte) (*manifest.Config, []manifest.Problem, error) {
		parses.Add(1)
		return orig(file, data)
	}
	t.Cleanup(func() { parse = orig })

	conf := testenv.NewRepo(t)
	conf.Commit(t, map[string]string{"courses.yaml": "version: 1\ncourses:\n  a:\n    repo: .\n    idle: 2 hours\n"}, "bad")
	loc, err := gitwatch.LocateConfig(conf.Bare, "main")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	m := gitwatch.NewMirrors(root, testLogger(t), gitwatch.Options{})
	l := NewLoader(m, root, loc, nil, testLogger(t))
	for i := range 5 {
		res, _ := l.Load(t.Context())
		if res.Rejected == nil {
			t.Fatalf("load %d: the bad head was not rejected", i)
		}
		if res, _ = l.Peek(t.Context()); res.Rejected == nil {
			t.Fatalf("peek %d: the bad head was not rejected", i)
		}
	}
	// A new commit with the same courses.yaml (a README edit) is not parsed
	// again either.
	conf.Commit(t, map[string]string{"README.md": "x"}, "readme")
	if res, _ := l.Load(t.Context()); res.Rejected == nil {
		t.Fatal("the bad courses.yaml was not rejected in a new commit")
	}
	if n := parses.Load(); n != 1 {
		t.Errorf("the rejected courses.yaml was parsed %d times, want 1", n)
	}
}

// State files name private repos and their errors: the daemon's user only.
func TestStateFilesPrivate(t *testing.T) {
	conf := testenv.NewRepo(t)
	conf.Commit(t, map[string]string{"courses.yaml": "version: 1\ncourses:\n  a:\n    repo: .\n", "images/a.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"}, "good")
	loc, err := gitwatch.LocateConfig(conf.Bare, "main")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	m := gitwatch.NewMirrors(root, testLogger(t), gitwatch.Options{})
	res, err := NewLoader(m, root, loc, nil, testLogger(t)).Load(t.Context())
	if err != nil || res.Current == nil {
		t.Fatalf("load: %+v, %v", res, err)
	}
	if _, err := gitwatch.NewSyncer(m, root, testLogger(t), 1).Sync(t.Context(), res.Current.Config, res.Current.Location, res.Current.Commit); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "courses.json"} {
		fi, err := os.Stat(filepath.Join(root, "state", f))
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("state/%s: mode %s, want 0600", f, m)
		}
	}
}
