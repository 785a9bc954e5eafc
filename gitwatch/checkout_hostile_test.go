package gitwatch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// outsideDir is a folder beside dest whose content must never change.
func outsideDir(t *testing.T) (dir string, check func()) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		t.Helper()
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"precious"}) {
			t.Errorf("outside folder changed: %q", names)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "precious")); err != nil || string(b) != "keep me" {
			t.Errorf("outside file changed: %q, %v", b, err)
		}
	}
}

// Odd names arrive unchanged; symlinks out of dest are made as symlinks and
// never written through, also when a later revision puts a folder, or a
// file, where the symlink was.
func TestHostileCheckoutSymlinksAndNames(t *testing.T) {
	out, check := outsideDir(t)
	f := testenv.NewRepo(t)
	odd := []string{"with space.txt", "ünïcødé-文件.txt", "-rf", "--help", `back\slash`, "sub dir/-n", "sub dir/日本/ファイル"}
	// Written and added here: the fixture's `git add NAME` would read
	// -rf as options.
	for _, n := range odd {
		p := filepath.Join(f.Work, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runGit(t, f.Work, "add", "-A")
	for name, target := range map[string]string{"abs": out, "rel": "../../../../../../../.." + out, "up": "..", "file-link": filepath.Join(out, "precious")} {
		if err := os.Symlink(target, filepath.Join(f.Work, name)); err != nil {
			t.Fatal(err)
		}
		runGit(t, f.Work, "add", "--", name)
	}
	first := f.Commit(t, map[string]string{"README": "r1"}, "symlinks out")

	// The next revision replaces each symlink by a folder or a file of the
	// same name, with content.
	for _, name := range []string{"abs", "rel", "up", "file-link"} {
		runGit(t, f.Work, "rm", "-q", name)
	}
	second := f.Commit(t, map[string]string{"abs/precious": "pwned", "rel/pwned": "pwned", "up/pwned": "pwned", "file-link": "pwned"}, "folders where the links were")

	repo, err := git.PlainOpen(f.Bare)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "course")
	if err := Checkout(t.Context(), repo, plumbing.NewHash(first), "", dest); err != nil {
		t.Fatalf("checkout 1: %v", err)
	}
	for _, n := range odd {
		if b, err := os.ReadFile(filepath.Join(dest, n)); err != nil || string(b) != "content of "+n {
			t.Errorf("%q: %q, %v", n, b, err)
		}
	}
	if got, err := os.Readlink(filepath.Join(dest, "abs")); err != nil || got != out {
		t.Errorf("abs link: %q, %v; want a symlink to %s", got, err, out)
	}
	check()

	if err := Checkout(t.Context(), repo, plumbing.NewHash(second), "", dest); err != nil {
		t.Fatalf("checkout 2: %v", err)
	}
	for _, p := range []string{"abs/precious", "rel/pwned", "up/pwned", "file-link"} {
		fi, err := os.Lstat(filepath.Join(dest, p))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s in dest: %v, %v; want a regular file", p, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dest), "pwned")); err == nil {
		t.Errorf("a file was written beside dest through a symlink")
	}
	check()
}

// Something else (a student container's bind mount, an admin) replaced a
// folder of dest with a symlink out of it: the checkout must write in dest,
// and prune must remove the symlink, not what it points to.
func TestHostileCheckoutPlantedSymlinks(t *testing.T) {
	out, check := outsideDir(t)
	f := testenv.NewRepo(t)
	c := f.Commit(t, map[string]string{"notebooks/a.ipynb": "{}", "modules/m.py": "x = 1"}, "course")
	repo, err := git.PlainOpen(f.Bare)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "course")
	if err := Checkout(t.Context(), repo, plumbing.NewHash(c), "", dest); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dest, "notebooks")); err != nil {
		t.Fatal(err)
	}
	for _, planted := range []string{"notebooks", "extra-link"} {
		if err := os.Symlink(out, filepath.Join(dest, planted)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(out, "precious"), filepath.Join(dest, "modules", "m.py.link")); err != nil {
		t.Fatal(err)
	}
	c2 := f.Commit(t, map[string]string{"notebooks/a.ipynb": `{"v": 2}`, "notebooks/precious": "pwned"}, "update")
	if err := Checkout(t.Context(), repo, plumbing.NewHash(c2), "", dest); err != nil {
		t.Fatalf("checkout over planted symlinks: %v", err)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "notebooks")); err != nil || !fi.IsDir() {
		t.Errorf("notebooks: %v, %v; want a real folder", fi, err)
	}
	for _, gone := range []string{"extra-link", "modules/m.py.link"} {
		if _, err := os.Lstat(filepath.Join(dest, gone)); err == nil {
			t.Errorf("planted %s not pruned", gone)
		}
	}
	check()
}

// A crafted tree (go-git plumbing, not the git CLI, which refuses it): a
// symlink and a folder of the same name, and an entry named "..". Checkout
// fails or stays inside dest; nothing outside is written.
func TestHostileCheckoutCraftedTree(t *testing.T) {
	out, check := outsideDir(t)
	dir := t.TempDir()
	repo, err := git.PlainInit(filepath.Join(dir, "crafted.git"), true)
	if err != nil {
		t.Fatal(err)
	}
	st := repo.Storer
	blob := func(data string) plumbing.Hash {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		_, _ = w.Write([]byte(data))
		_ = w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tree := func(entries ...object.TreeEntry) plumbing.Hash {
		obj := st.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	sub := tree(object.TreeEntry{Name: "pwned", Mode: filemode.Regular, Hash: blob("pwned")})
	cases := map[string]plumbing.Hash{
		"symlink then folder of the same name": tree(
			object.TreeEntry{Name: "d", Mode: filemode.Symlink, Hash: blob(out)},
			object.TreeEntry{Name: "d", Mode: filemode.Dir, Hash: sub}),
		"entry named ..": tree(object.TreeEntry{Name: "..", Mode: filemode.Dir, Hash: sub}),
		"entry named .git": tree(object.TreeEntry{Name: ".git", Mode: filemode.Dir,
			Hash: tree(object.TreeEntry{Name: "config", Mode: filemode.Regular, Hash: blob("[core]\n\tfsmonitor = touch /tmp/pwned\n")})}),
		"entry with a slash": tree(object.TreeEntry{Name: "../../pwned", Mode: filemode.Regular, Hash: blob("pwned")}),
	}
	for name, root := range cases {
		t.Run(name, func(t *testing.T) {
			sig := object.Signature{Name: "t", Email: "t@example.org"}
			cobj := st.NewEncodedObject()
			if err := (&object.Commit{Author: sig, Committer: sig, Message: name, TreeHash: root}).Encode(cobj); err != nil {
				t.Fatal(err)
			}
			commit, err := st.SetEncodedObject(cobj)
			if err != nil {
				t.Fatal(err)
			}
			base := t.TempDir()
			dest := filepath.Join(base, "a", "b", "course")
			err = Checkout(t.Context(), repo, commit, "", dest)
			t.Logf("checkout: %v", err)
			var outside []string
			_ = filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					if rel, _ := filepath.Rel(dest, p); rel == ".." || filepath.IsAbs(rel) || len(rel) > 1 && rel[:2] == ".." {
						outside = append(outside, p)
					}
				}
				return nil
			})
			if len(outside) > 0 {
				t.Errorf("files written outside dest: %q", outside)
			}
			if _, err := os.Lstat(filepath.Join(dest, ".git")); err == nil {
				t.Errorf("a .git entry of the tree was checked out")
			}
			check()
		})
	}
}
