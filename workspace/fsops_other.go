//go:build !linux

package workspace

import (
	"errors"
	"os"
)

const noFollow = 0

// syncFS has no syncfs(2) to call here; sync(2) is not exposed either, so a
// first copy is only as durable as the file system makes it.
func syncFS(dir string) error { return nil }

// linkOpen is unsupported here: backups copy the bytes instead.
func linkOpen(fh *os.File, name string) error { return errors.ErrUnsupported }
