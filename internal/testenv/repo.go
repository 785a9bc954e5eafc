package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Repo is a git fixture: a bare repo (the remote) and a work tree that
// pushes to it, both on branch main.
type Repo struct {
	Bare, Work string
}

// NewRepo makes an empty Repo in a temporary directory of t.
func NewRepo(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	return NewRepoAt(t, filepath.Join(dir, "remote.git"), filepath.Join(dir, "work"))
}

// NewRepoAt makes an empty Repo whose bare repository is bare (a folder a
// git server serves, say) and work tree work.
func NewRepoAt(t testing.TB, bare, work string) *Repo {
	t.Helper()
	r := &Repo{Bare: bare, Work: work}
	Git(t, filepath.Dir(bare), "init", "-q", "--bare", "-b", "main", r.Bare)
	Git(t, filepath.Dir(bare), "init", "-q", "-b", "main", r.Work)
	Git(t, r.Work, "remote", "add", "origin", r.Bare)
	return r
}

// Commit writes files (an empty content removes the file), commits them and
// pushes the current branch; it returns the new commit.
func (r *Repo) Commit(t testing.TB, files map[string]string, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Work, name)
		if content == "" {
			Git(t, r.Work, "rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		Git(t, r.Work, "add", name)
	}
	Git(t, r.Work, "commit", "-q", "--allow-empty", "-m", msg)
	Git(t, r.Work, "push", "-q", "-f", "origin", "HEAD")
	return Git(t, r.Work, "rev-parse", "HEAD")
}

// URL is the remote's file:// URL.
func (r *Repo) URL() string { return "file://" + r.Bare }

// ReadTree returns the files under dir by their path relative to dir:
// their content, or "-> target" for a symbolic link.
func ReadTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			got[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// EqualTree fails the test, naming step, when got (a ReadTree) is not want.
func EqualTree(t testing.TB, step string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got files %v, want %v", step, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: %s = %q, want %q (tree %v)", step, k, got[k], v, got)
		}
	}
}
