package daemon

import (
	"errors"
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
// cannot be tightened (another user's ROOT) is only warned about. A key
// (the Jupyter tokens', the front door's) others can read is refused, not
// tightened: it may have been read already.
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
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(state, e.Name())
		if what, ok := secretKeys(root)[p]; ok {
			// A key others could read may have been read: tightening it
			// would keep a secret that is no longer one.
			errs = append(errs, checkKey(p, what))
			continue
		}
		tighten(p, 0o600, log)
	}
	return errors.Join(errs...)
}

// secretKeys are the site's secret keys under ROOT/state, with what a reader of
// one can do.
func secretKeys(root string) map[string]string {
	return map[string]string{
		rootdir.TokenKey(root):        "derive every student's Jupyter token",
		rootdir.ProxySessionKey(root): "forge a front-door session of any student",
	}
}

// checkKey refuses a key others can read, saying what a reader can do and
// both ways out.
func checkKey(p, what string) error {
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return fmt.Errorf("%s can be read by others (mode %s), and whoever read it can %s: if no one else could have, chmod 600 %s; otherwise delete it (a new key is made at start) and remove the containers made with it",
		p, fi.Mode().Perm(), what, p)
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
