package workspace

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// kind is what a workspace holds at a path.
type kind int

const (
	absent  kind = iota // nothing, and every parent is a real folder (or missing)
	regular             // a regular file, read
	other               // a folder, a symlink, a device, or a parent that is not a folder: the student's, never touched
)

// fileState is what a path of the workspace held when it was read.
type fileState struct {
	kind kind
	// blocked is, for other, the parent folder of the path that is not a
	// folder ("" when the path itself is the student's something).
	blocked string
	sha     string      // regular: sha256 of data
	data    []byte      // regular
	info    fs.FileInfo // regular: for the check right before the file is replaced
	// f stays open on the file read (regular), so that a backup can link
	// the very inode that was hashed; closed by folder.close.
	f *os.File
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// folder is the student's folder, reached only through an os.Root so that
// no symlink the student makes can lead a write outside it.
type folder struct {
	root  *os.Root
	dir   string
	own   owner
	fault func(op string) error
	made  map[string]bool // folders known to exist
	open  []*os.File
}

// owner is who the files written in a workspace belong to.
type owner struct{ uid, gid int }

func (o owner) active() bool { return o.uid >= 0 && o.gid >= 0 && os.Geteuid() == 0 }

func openFolder(dir string, own owner, fault func(string) error) (*folder, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &folder{root: r, dir: dir, own: own, fault: fault, made: map[string]bool{".": true}}, nil
}

func (f *folder) close() {
	for _, o := range f.open {
		o.Close()
	}
	f.open = nil
	f.root.Close()
}

func (f *folder) hook(op, p string) error {
	if f.fault == nil {
		return nil
	}
	return f.fault(op + " " + p)
}

// parentsOK walks p's parent folders without following symlinks: it returns
// "" if each is a real folder or missing, else the first one that is not.
func (f *folder) parentsOK(p string) (string, error) {
	dir := path.Dir(p)
	if dir == "." || f.made[dir] {
		return "", nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		if f.made[sub] {
			continue
		}
		fi, err := f.root.Lstat(sub)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return sub, nil
		}
		f.made[sub] = true
	}
	return "", nil
}

// stat reads what p holds, without following a symlink anywhere on its way.
func (f *folder) stat(p string) (fileState, error) {
	blocked, err := f.parentsOK(p)
	if err != nil {
		return fileState{}, err
	}
	if blocked != "" {
		return fileState{kind: other, blocked: blocked}, nil
	}
	fi, err := f.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{kind: absent}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileState{kind: other}, nil
	}
	fh, err := f.root.OpenFile(p, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return fileState{}, err
	}
	data, err := io.ReadAll(fh)
	if err == nil {
		fi, err = fh.Stat()
	}
	if err != nil {
		fh.Close()
		return fileState{}, err
	}
	if !fi.Mode().IsRegular() {
		fh.Close()
		return fileState{kind: other}, nil
	}
	f.open = append(f.open, fh)
	return fileState{kind: regular, sha: shaOf(data), data: data, info: fi, f: fh}, nil
}

// unchanged reports whether p still holds what st saw: the same file
// (inode), size and modification time; an absent path is still absent.
func (f *folder) unchanged(p string, st fileState) bool {
	fi, err := f.root.Lstat(p)
	switch st.kind {
	case absent:
		return errors.Is(err, fs.ErrNotExist)
	case regular:
		return err == nil && os.SameFile(fi, st.info) && fi.Size() == st.info.Size() && fi.ModTime().Equal(st.info.ModTime())
	}
	return false
}

// mkdirs makes p's parent folders, owned by the student.
func (f *folder) mkdirs(p string) error {
	dir := path.Dir(p)
	if f.made[dir] {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		sub := strings.Join(parts[:i+1], "/")
		if f.made[sub] {
			continue
		}
		err := f.root.Mkdir(sub, 0o755)
		if err == nil {
			if f.own.active() {
				if err := f.root.Lchown(sub, f.own.uid, f.own.gid); err != nil {
					return err
				}
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return err
		} else if fi, lerr := f.root.Lstat(sub); lerr != nil || !fi.IsDir() {
			return fmt.Errorf("%s: %w", sub, ErrInTheWay)
		}
		f.made[sub] = true
	}
	return nil
}

// tmpName is the temporary file p is written to before its rename: in p's
// folder, hidden, and the same on every run, so that one left by a crash is
// taken away by the next write of p.
func tmpName(p string) string {
	return path.Join(path.Dir(p), ".nbh-sync-"+shaOf([]byte(path.Base(p)))[:16]+".tmp")
}

// isTmpName reports whether a name is one of tmpName's.
func isTmpName(name string) bool {
	return strings.HasPrefix(name, ".nbh-sync-") && strings.HasSuffix(name, ".tmp")
}

// put writes data to p atomically: a temporary file in p's folder (synced
// when sync is set), owned by the student, then renamed over p — or, with
// create, linked to p, which fails with ErrInTheWay if p appeared meanwhile
// (no student file is ever clobbered by a create).
func (f *folder) put(p string, data []byte, perm fs.FileMode, create, sync bool) error {
	if err := f.mkdirs(p); err != nil {
		return err
	}
	tmp := tmpName(p)
	if err := f.root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fh, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, perm)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil && f.own.active() {
		err = fh.Chown(f.own.uid, f.own.gid)
	}
	if err == nil && perm&0o7000 == 0 {
		// The umask may have taken bits off: the course's mode wins.
		err = fh.Chmod(perm)
	}
	if err == nil && sync {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		f.root.Remove(tmp)
		return err
	}
	// A crash here leaves the temporary file: the next write of p removes it.
	if err := f.hook("write", p); err != nil {
		return err
	}
	if create {
		err = f.root.Link(tmp, p)
		f.root.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", p, ErrInTheWay)
		}
		return err
	}
	if err := f.root.Rename(tmp, p); err != nil {
		f.root.Remove(tmp)
		return err
	}
	return nil
}

// remove takes p away.
func (f *folder) remove(p string) error {
	if err := f.hook("remove", p); err != nil {
		return err
	}
	err := f.root.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// syncDirs flushes the folders holding paths, so that the renames are on
// disk before the base says they were made.
func (f *folder) syncDirs(paths []string) error {
	seen := map[string]bool{}
	for _, p := range paths {
		d := path.Dir(p)
		if seen[d] {
			continue
		}
		seen[d] = true
		fh, err := f.root.Open(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = fh.Sync()
		fh.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFileSync writes a private file outside the workspace (state,
// backups, blobs) atomically and durably.
func writeFileSync(name string, data []byte, perm fs.FileMode) error {
	dir, base := splitPath(name)
	fh, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil {
		err = fh.Chmod(perm)
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(fh.Name(), name)
	}
	if err != nil {
		os.Remove(fh.Name())
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	fh, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = fh.Sync()
	fh.Close()
	return err
}

func splitPath(name string) (dir, base string) {
	i := strings.LastIndexByte(name, os.PathSeparator)
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}
