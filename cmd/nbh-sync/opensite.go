package main

import (
	"os"
	"path/filepath"

	"github.com/nbhosting/nbh-sync/daemon"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/site"
)

// openSite opens the site for a command that works directly (no daemon).
// With record, the command changes the site: ROOT is created (and its
// permissions tightened) and what the command does goes to the history
// store, unless a daemon holds it. Without record the command only reads:
// ROOT is neither created nor changed, an existing history store is opened
// read-only, and when ROOT does not exist the mirrors a plan fetches into
// are a temporary directory, removed when the site is closed.
func (g *globals) openSite(record bool) (*site.Site, func(), error) {
	root, err := filepath.Abs(g.root)
	if err != nil {
		return nil, nil, err
	}
	var mirrorRoot string
	switch {
	case record:
		if err := daemon.PrepareRoot(root, g.log); err != nil {
			return nil, nil, err
		}
	case !fileExists(root):
		if mirrorRoot, err = os.MkdirTemp("", "nbh-sync-mirrors-"); err != nil {
			return nil, nil, err
		}
		g.log.Info("no data directory yet: fetching into a temporary directory", "root", root)
	}
	removeMirrors := func() {
		if mirrorRoot != "" {
			os.RemoveAll(mirrorRoot)
		}
	}
	creds, err := g.configCredentials()
	if err != nil {
		removeMirrors()
		return nil, nil, err
	}
	var hist *history.Store
	switch {
	case record:
		hist, err = history.Open(rootdir.History(root), history.Options{})
		if err != nil {
			g.log.Warn("this run is not recorded in the history", "err", err)
			hist = nil
		}
	case fileExists(rootdir.History(root)):
		// Read-only, for the recent builds and actions a status shows.
		if hist, err = history.Open(rootdir.History(root), history.Options{ReadOnly: true}); err != nil {
			g.log.Info("history not shown", "err", err)
			hist = nil
		}
	}
	s, err := site.New(site.Options{Config: g.config, ConfigCredentials: creds, SafeDirectories: g.safeDirs, Root: root, MirrorRoot: mirrorRoot,
		Log: g.log, History: hist})
	if err != nil {
		if hist != nil {
			hist.Close()
		}
		removeMirrors()
		return nil, nil, err
	}
	closeAll := func() {
		s.Close()
		if hist != nil {
			hist.Close()
		}
		removeMirrors()
	}
	return s, closeAll, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
