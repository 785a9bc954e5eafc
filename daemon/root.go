package daemon

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nbhosting/nbh-sync/rootdir"
)

// PrepareRoot creates ROOT (0750) and ROOT/state (0700), and tightens them
// when they are looser, saying so: ROOT holds mirrors and checkouts of
// private repos and students' work, and state holds the API socket and
// what the daemon knows of every repo. Files in state are made 0600. What
// cannot be tightened (another user's ROOT) is only warned about.
func PrepareRoot(root string, log *slog.Logger) error {
	state := rootdir.State(root)
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	tighten(root, 0o750, log)
	tighten(state, 0o700, log)
	entries, err := os.ReadDir(state)
	if err != nil {
		log.Warn("state files not checked", "path", state, "err", err)
		return nil
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			tighten(filepath.Join(state, e.Name()), 0o600, log)
		}
	}
	return nil
}

// tighten removes from p's mode the permission bits that max lacks.
func tighten(p string, max fs.FileMode, log *slog.Logger) {
	fi, err := os.Stat(p)
	if err != nil {
		log.Warn("permissions not checked", "path", p, "err", err)
		return
	}
	perm := fi.Mode().Perm()
	if perm&^max == 0 {
		return
	}
	if err := os.Chmod(p, perm&max); err != nil {
		log.Warn("others can read it, and it could not be tightened", "path", p, "mode", perm.String(), "want", (perm & max).String(), "err", err)
		return
	}
	log.Warn("tightened permissions: others could read it", "path", p, "was", perm.String(), "now", (perm & max).String())
}
