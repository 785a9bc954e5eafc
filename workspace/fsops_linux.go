package workspace

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

const noFollow = unix.O_NOFOLLOW

// syncFS flushes the whole file system holding dir (syncfs(2)): one call
// instead of one fsync per file when a workspace is first made.
func syncFS(dir string) error {
	fh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer fh.Close()
	if err := unix.Syncfs(int(fh.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// linkOpen makes name a hard link to the file open as fh — the very inode
// that was read, even if its path changed since (linkat through
// /proc/self/fd, AT_SYMLINK_FOLLOW).
func linkOpen(fh *os.File, name string) error {
	old := "/proc/self/fd/" + strconv.Itoa(int(fh.Fd()))
	if err := unix.Linkat(unix.AT_FDCWD, old, unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "linkat", Old: fh.Name(), New: name, Err: err}
	}
	return nil
}
