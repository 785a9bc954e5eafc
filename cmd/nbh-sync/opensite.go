package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/site"
)

// openSite opens the site for a command that works directly (no daemon).
// With record, what the command does goes to the history store, unless a
// daemon holds it.
func (g *globals) openSite(record bool) (*site.Site, func(), error) {
	root, err := filepath.Abs(g.root)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, "state"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("--root %s: %w", root, err)
	}
	var hist *history.Store
	if record {
		hist, err = history.Open(history.Path(root), history.Options{})
		if err != nil {
			g.log.Warn("this run is not recorded in the history", "err", err)
			hist = nil
		}
	}
	s, err := site.New(site.Options{Config: g.config, Root: root, Log: g.log, History: hist})
	if err != nil {
		if hist != nil {
			hist.Close()
		}
		return nil, nil, err
	}
	closeAll := func() {
		s.Close()
		if hist != nil {
			hist.Close()
		}
	}
	return s, closeAll, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
