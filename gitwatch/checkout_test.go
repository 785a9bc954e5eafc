package gitwatch

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func TestCheckoutSubpathInPlace(t *testing.T) {
	f := testenv.NewRepo(t)
	c1 := f.Commit(t, map[string]string{
		"README":             "top",
		"intro/a.txt":        "a1",
		"intro/nb/b.ipynb":   "b1",
		"intro/gone/x.txt":   "x",
		"intro/becomes-dir":  "file",
		"other/not-mine.txt": "no",
	}, "one")
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The tree turns intro/nb into a symlink that points outside dest: the
	// next checkout must replace it and never write through it.
	runGit(t, f.Work, "rm", "-q", "-r", "intro/nb", "intro/becomes-dir")
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(f.Work, "intro/nb")); err != nil {
		t.Fatal(err)
	}
	runGit(t, f.Work, "add", "intro/nb")
	c2 := f.Commit(t, map[string]string{"intro/a.txt": "a2", "intro/gone/x.txt": "", "intro/becomes-dir/y.txt": "y"}, "two")
	runGit(t, f.Work, "rm", "-q", "intro/nb")
	c3 := f.Commit(t, map[string]string{"intro/nb/b.ipynb": "b3"}, "three")

	repo, err := git.PlainOpen(f.Bare)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "courses", "intro")
	ctx := t.Context()

	if err := Checkout(ctx, repo, plumbing.NewHash(c1), "intro", dest); err != nil {
		t.Fatal(err)
	}
	testenv.EqualTree(t, "c1", testenv.ReadTree(t, dest), map[string]string{"a.txt": "a1", "nb/b.ipynb": "b1", "gone/x.txt": "x", "becomes-dir": "file"})
	ino := inode(t, dest)
	// Leftovers of a crashed checkout and stray files go away.
	if err := os.WriteFile(filepath.Join(dest, tmpPrefix+"dead"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Checkout(ctx, repo, plumbing.NewHash(c2), "intro", dest); err != nil {
		t.Fatal(err)
	}
	testenv.EqualTree(t, "c2", testenv.ReadTree(t, dest), map[string]string{"a.txt": "a2", "nb": "-> " + filepath.Dir(outside), "becomes-dir/y.txt": "y"})

	if err := Checkout(ctx, repo, plumbing.NewHash(c3), "intro", dest); err != nil {
		t.Fatal(err)
	}
	testenv.EqualTree(t, "c3", testenv.ReadTree(t, dest), map[string]string{"a.txt": "a2", "nb/b.ipynb": "b3", "becomes-dir/y.txt": "y"})
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Fatalf("file outside dest changed: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(outside), "b.ipynb")); err == nil {
		t.Fatal("checkout wrote through a symlink out of dest")
	}
	if inode(t, dest) != ino {
		t.Fatal("dest was replaced: a bind mount of it would go stale")
	}

	// An unchanged file is not rewritten.
	aIno := inode(t, filepath.Join(dest, "a.txt"))
	if err := Checkout(ctx, repo, plumbing.NewHash(c3), "intro", dest); err != nil {
		t.Fatal(err)
	}
	if inode(t, filepath.Join(dest, "a.txt")) != aIno {
		t.Fatal("an unchanged file was rewritten")
	}

	if err := Checkout(ctx, repo, plumbing.NewHash(c3), "no/such/dir", dest); err == nil {
		t.Fatal("checkout of a missing path: no error")
	}
	testenv.EqualTree(t, "after failed checkout", testenv.ReadTree(t, dest), map[string]string{"a.txt": "a2", "nb/b.ipynb": "b3", "becomes-dir/y.txt": "y"})
}
