// Package statefile writes the small JSON documents nbh-sync keeps under
// ROOT/state, so that a crash mid-write never leaves a torn file: readers
// see either the old document or the new one.
package statefile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteJSON writes v, indented, to p atomically (a temporary file in the
// same directory, then a rename), creating the directory when missing. The
// file gets perm; a temporary file left by a failed write is removed.
func WriteJSON(p string, v any, perm fs.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp-" + randomSuffix()
	// WriteFile's perm is filtered by the umask and ignored for an
	// existing file; Chmod makes the mode exactly perm (0600 secrets stay
	// private whatever the umask).
	if err := os.WriteFile(tmp, append(b, '\n'), perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
