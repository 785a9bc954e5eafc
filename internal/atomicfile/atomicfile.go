// Package atomicfile writes state files so that a reader (or a restart
// after a crash) sees the old content or the new, never a torn one.
package atomicfile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteJSON writes v as indented JSON to p with mode perm: to a temporary
// file beside p, synced, then renamed over p. The directory is created
// (0750) if missing.
func WriteJSON(p string, v any, perm fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return Write(p, append(b, '\n'), perm)
}

// Write writes data to p atomically with mode perm, as WriteJSON does.
func Write(p string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp := p + ".tmp-" + suffix()
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// OpenFile's mode is filtered by the umask; perm is what was asked.
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func suffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
