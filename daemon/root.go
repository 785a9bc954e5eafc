package daemon

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// PrepareRoot creates ROOT (0750) and ROOT/state (0700), and tightens them
// when they are looser, saying so: ROOT holds mirrors and checkouts of
// private repos and students' work, and state holds the API socket and
// what the daemon knows of every repo. Files in state are made 0600.
func PrepareRoot(root string, log *slog.Logger) error {
	state := filepath.Join(root, "state")
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if err := tighten(root, 0o750, log); err != nil {
		return err
	}
	if err := tighten(state, 0o700, log); err != nil {
		return err
	}
	entries, err := os.ReadDir(state)
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := tighten(filepath.Join(state, e.Name()), 0o600, log); err != nil {
				return err
			}
		}
	}
	return nil
}

// tighten removes from p's mode the permission bits that max lacks.
func tighten(p string, max fs.FileMode, log *slog.Logger) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	perm := fi.Mode().Perm()
	if perm&^max == 0 {
		return nil
	}
	if err := os.Chmod(p, perm&max); err != nil {
		return fmt.Errorf("--root: tighten %s: %w", p, err)
	}
	log.Warn("tightened permissions: others could read it", "path", p, "was", perm.String(), "now", (perm & max).String())
	return nil
}
