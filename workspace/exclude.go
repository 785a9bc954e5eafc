package workspace

import (
	"fmt"
	"path"
	"strings"
)

// matcher says which course paths never reach a workspace: every path with a
// component starting with ".git" (.git, .gitignore, .github, …) or named
// .ipynb_checkpoints, everything under a top-level .nbhosting/, and what the
// course's own patterns name.
//
// A pattern is a path.Match glob. One with a slash (a leading slash is
// ignored) is matched against the whole path from the course's top
// ("solutions/*.ipynb", "/draft.md"); one without is matched against each
// name on the way down, as .gitignore does ("*.pyc"). A trailing slash
// limits a pattern to folders ("solutions/"); excluding a folder excludes
// all it holds.
type matcher struct {
	pats []pattern
}

type pattern struct {
	glob     string
	anchored bool // has a slash: matched against the whole path
	dirOnly  bool
}

func newMatcher(exclude []string) (matcher, error) {
	var m matcher
	for _, raw := range exclude {
		p := strings.TrimSpace(raw)
		if p == "" {
			continue
		}
		pt := pattern{}
		if strings.HasSuffix(p, "/") {
			pt.dirOnly = true
			p = strings.TrimRight(p, "/")
		}
		if strings.Contains(p, "/") {
			pt.anchored = true
			p = strings.TrimLeft(p, "/")
		}
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return matcher{}, fmt.Errorf("exclude pattern %q: %w", raw, ErrBadPattern)
		}
		pt.glob = p
		m.pats = append(m.pats, pt)
	}
	return m, nil
}

// excluded reports whether rel (slash-separated, from the course's top)
// stays out of workspaces. The walk asks for each folder before its
// content, so only rel's last name needs the unanchored patterns.
func (m matcher) excluded(rel string, isDir bool) bool {
	name := path.Base(rel)
	if strings.HasPrefix(name, ".git") || name == ".ipynb_checkpoints" {
		return true
	}
	if rel == ".nbhosting" || strings.HasPrefix(rel, ".nbhosting/") {
		return true
	}
	for _, p := range m.pats {
		if p.dirOnly && !isDir {
			continue
		}
		subject := name
		if p.anchored {
			subject = rel
		}
		if ok, _ := path.Match(p.glob, subject); ok {
			return true
		}
	}
	return false
}
