package gitwatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// tmpPrefix names the files Checkout writes before renaming them into
// place; a leftover one (after a crash) is removed by the next Checkout.
const tmpPrefix = ".nbh-tmp-"

// Checkout makes dest hold exactly the tree of commit under subpath ("" for
// the whole tree), in place: dest itself is never replaced, so a bind mount
// of it (a student container) keeps showing the current revision. Each new
// or changed file is written to a temporary file in its own directory and
// renamed over the old one, so a reader sees the old file or the new one,
// never a partial one; files and folders that are not in the tree are
// removed afterwards. Unchanged files are not touched. Nothing outside dest
// is ever written or removed: all access goes through an os.Root, which
// refuses to follow a symlink out of dest. Submodules are left out.
//
// The switch is atomic per file, not for the whole tree: while it runs, a
// reader may see some files of each revision.
func Checkout(ctx context.Context, repo *git.Repository, commit plumbing.Hash, subpath, dest string) error {
	tree, err := TreeAt(repo, commit, subpath)
	if err != nil {
		return fmt.Errorf("checkout %s:%s: %w", commit, subpath, err)
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	defer root.Close()

	files := map[string]bool{}
	dirs := map[string]bool{".": true}
	iter := tree.Files()
	defer iter.Close()
	for {
		f, err := iter.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("checkout %s: read tree: %w", commit, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		files[f.Name] = true
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		if err := place(root, f, dirs); err != nil {
			return fmt.Errorf("checkout %s: %s: %w", commit, f.Name, err)
		}
	}
	if err := prune(root, files, dirs); err != nil {
		return fmt.Errorf("checkout %s: %w", commit, err)
	}
	return nil
}

// TreeAt returns the tree of commit, or of its subfolder subpath.
func TreeAt(repo *git.Repository, commit plumbing.Hash, subpath string) (*object.Tree, error) {
	c, err := repo.CommitObject(commit)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	subpath = strings.Trim(path.Clean("/"+subpath), "/")
	if subpath == "" {
		return tree, nil
	}
	sub, err := tree.Tree(subpath)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", subpath, err)
	}
	return sub, nil
}

// place writes f at its path under root unless it is already there.
func place(root *os.Root, f *object.File, dirs map[string]bool) error {
	if err := ensureDir(root, path.Dir(f.Name)); err != nil {
		return err
	}
	same, err := unchanged(root, f)
	if err != nil || same {
		return err
	}
	tmp := path.Join(path.Dir(f.Name), tmpPrefix+randomSuffix())
	if f.Mode == filemode.Symlink {
		target, err := f.Contents()
		if err != nil {
			return err
		}
		if err := root.Symlink(target, tmp); err != nil {
			return err
		}
	} else if err := writeBlob(root, tmp, f); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	// A folder cannot be renamed over: a path that was a folder and is now
	// a file loses the folder first.
	if fi, err := root.Lstat(f.Name); err == nil && fi.IsDir() {
		if err := root.RemoveAll(f.Name); err != nil {
			return err
		}
	}
	if err := root.Rename(tmp, f.Name); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return nil
}

func writeBlob(root *os.Root, name string, f *object.File) error {
	perm := os.FileMode(0o644)
	if f.Mode == filemode.Executable {
		perm = 0o755
	}
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	r, err := f.Reader()
	if err != nil {
		out.Close()
		return err
	}
	defer r.Close()
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The umask may have narrowed perm; the tree says what it is.
	return root.Chmod(name, perm)
}

// ensureDir makes every component of dir a real folder: a file or symlink
// in the way (from an older revision) is removed, so that nothing is ever
// written through a symlink.
func ensureDir(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		fi, err := root.Lstat(cur)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			if err := root.Remove(cur); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if err := root.Mkdir(cur, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// unchanged reports whether the file at f.Name already has f's content and
// kind, comparing the git blob hash of what is on disk.
func unchanged(root *os.Root, f *object.File) (bool, error) {
	fi, err := root.Lstat(f.Name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch {
	case f.Mode == filemode.Symlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return false, nil
		}
		target, err := root.Readlink(f.Name)
		if err != nil {
			return false, nil
		}
		want, err := f.Contents()
		return err == nil && target == want, err
	case !fi.Mode().IsRegular() || fi.Size() != f.Size:
		return false, nil
	case (fi.Mode().Perm()&0o100 != 0) != (f.Mode == filemode.Executable):
		return false, nil
	}
	data, err := root.ReadFile(f.Name)
	if err != nil {
		return false, nil
	}
	return plumbing.ComputeHash(plumbing.BlobObject, data) == f.Hash, nil
}

// prune removes from root whatever is neither a file of the tree nor a
// folder holding one.
func prune(root *os.Root, files, dirs map[string]bool) error {
	var extra []string
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.IsDir() && dirs[p] || !d.IsDir() && files[p] {
			return nil
		}
		extra = append(extra, p)
		if d.IsDir() {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list old files: %w", err)
	}
	for _, p := range extra {
		if err := root.RemoveAll(p); err != nil {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
