// Package configrepo follows the config repo: it fetches it, validates the
// courses.yaml of its head commit (and that every image it names can be
// built) and applies a commit only when it is valid; a rejected commit is
// reported and the last good revision stays in force, across restarts too
// (its record is rootdir.ConfigState).
//
// It reads the repo through gitwatch's mirrors; bringing the courses' work
// trees to a revision is gitwatch's Syncer.
package configrepo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/internal/githash"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// Revision is a config commit that passed validation.
type Revision struct {
	Commit   githash.Hash       `json:"commit"`
	Config   *manifest.Config   `json:"-"`
	Warnings []manifest.Problem `json:"warnings,omitempty"`
	// Sources answers for this revision: the config tree and the course
	// trees as fetched when it was loaded.
	Sources  *gitwatch.Sources       `json:"-"`
	Location gitwatch.ConfigLocation `json:"location"`
	At       time.Time               `json:"at"`
}

// Rejection is a config commit that failed validation and is not applied.
type Rejection struct {
	Commit   githash.Hash       `json:"commit"`
	Problems []manifest.Problem `json:"problems"`
	At       time.Time          `json:"at"`
}

// Result is what Load found.
type Result struct {
	// Current is the revision in force (nil if no good one was ever seen).
	Current *Revision
	// Changed is true when Current was replaced by this Load.
	Changed bool
	// Rejected is set when the branch head is a commit that failed
	// validation; Current is then the last good revision.
	Rejected *Rejection
}

// record is persisted in rootdir.ConfigState so that the last good
// revision survives a restart.
type record struct {
	Location gitwatch.ConfigLocation `json:"location"`
	Good     *struct {
		Commit githash.Hash `json:"commit"`
		At     time.Time    `json:"at"`
	} `json:"good,omitempty"`
	Rejected *Rejection `json:"rejected,omitempty"`
}

// Loader follows the config repo: it fetches it, validates the head
// commit and applies it only when valid.
type Loader struct {
	m     *gitwatch.Mirrors
	loc   gitwatch.ConfigLocation
	creds *manifest.Credentials
	state string
	log   *slog.Logger

	// mu guards what follows; it is never held across network I/O, so
	// that readers (status, plan, webhooks) never wait for a fetch.
	mu       sync.Mutex
	current  *Revision
	rejected *Rejection
	restored bool
	// refused remembers the problems of courses.yaml blobs that failed to
	// parse, by blob hash, so that a rejected head is not parsed again on
	// every load and plan (a hostile one may be costly even to refuse).
	refused map[plumbing.Hash][]manifest.Problem
}

// maxRefused bounds Loader.refused.
const maxRefused = 16

// parse is manifest.Parse; tests count its calls.
var parse = manifest.Parse

// NewLoader returns a loader of the config repo at loc, whose mirror m
// keeps, and whose state is kept in rootdir.ConfigState of root. creds may
// be nil.
func NewLoader(m *gitwatch.Mirrors, root string, loc gitwatch.ConfigLocation, creds *manifest.Credentials, log *slog.Logger) *Loader {
	return &Loader{m: m, loc: loc, creds: creds, state: rootdir.ConfigState(root), log: log}
}

// Load fetches the config repo and returns the revision in force. A head
// that fails validation (courses.yaml missing or invalid, an image nobody
// can build) is reported in Rejected and the last good revision stays. On a
// fetch error Current is still the last good revision, and the error is
// returned beside it.
func (l *Loader) Load(ctx context.Context) (Result, error) {
	head, ferr := l.m.Update(ctx, l.loc.URL, l.loc.Branch, l.creds)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ferr != nil {
		l.restoreOnce()
		return Result{Current: l.current, Rejected: l.rejected}, fmt.Errorf("config repo: %w", ferr)
	}
	res, err := l.next(head.Commit)
	switch {
	case err != nil || (!res.Changed && res.Rejected == nil):
		return res, err
	case res.Rejected != nil:
		if l.rejected == nil || l.rejected.Commit != res.Rejected.Commit {
			l.log.WarnContext(ctx, "config commit rejected", "commit", res.Rejected.Commit.String(), "problems", len(res.Rejected.Problems))
		}
		l.rejected = res.Rejected
		return res, l.save()
	}
	l.current, l.rejected = res.Current, nil
	l.log.InfoContext(ctx, "config applied", "commit", res.Current.Commit.String(), "warnings", len(res.Current.Warnings))
	return res, l.save()
}

// Fetch brings the mirror of the config repo up to date and applies
// nothing: Peek then sees the new head.
func (l *Loader) Fetch(ctx context.Context) error {
	if _, err := l.m.Update(ctx, l.loc.URL, l.loc.Branch, l.creds); err != nil {
		return fmt.Errorf("config repo: %w", err)
	}
	return nil
}

// Peek evaluates the head of the config repo's mirror (as the last fetch
// left it) like Load, but with no network, and applies and persists
// nothing: it is what plan shows.
func (l *Loader) Peek(context.Context) (Result, error) {
	head, err := l.m.Known(l.loc.URL, l.loc.Branch)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.restoreOnce()
		return Result{Current: l.current, Rejected: l.rejected}, fmt.Errorf("config repo: %w", err)
	}
	return l.next(head)
}

// Restored returns the revision in force without any network: the one
// loaded in this process, or the last good one recorded under root; nil
// when none is known.
func (l *Loader) Restored() *Revision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restoreOnce()
	return l.current
}

// restoreOnce restores the last good revision the first time it is asked
// for. l.mu is held.
func (l *Loader) restoreOnce() {
	if !l.restored {
		l.restored = true
		l.restore()
	}
}

// next evaluates the config head against the revision in force. l.mu is
// held; no network.
func (l *Loader) next(head plumbing.Hash) (Result, error) {
	l.restoreOnce()
	if l.current != nil && githash.Hash(head) == l.current.Commit {
		return Result{Current: l.current}, nil
	}
	if l.rejected != nil && githash.Hash(head) == l.rejected.Commit {
		return Result{Current: l.current, Rejected: l.rejected}, nil
	}
	rev, probs, err := l.evaluate(head)
	if err != nil {
		return Result{Current: l.current, Rejected: l.rejected}, err
	}
	if rev == nil {
		return Result{Current: l.current, Rejected: &Rejection{Commit: githash.Hash(head), Problems: probs, At: time.Now()}}, nil
	}
	return Result{Current: rev, Changed: true}, nil
}

// restore brings back the last good revision from the state file, from the
// mirror on disk, with no network.
func (l *Loader) restore() {
	b, err := os.ReadFile(l.state)
	if err != nil {
		return
	}
	var st record
	if err := json.Unmarshal(b, &st); err != nil || st.Location != shown(l.loc) {
		return
	}
	l.rejected = st.Rejected
	if st.Good == nil {
		return
	}
	rev, probs, err := l.evaluate(plumbing.Hash(st.Good.Commit))
	if err != nil || rev == nil {
		l.log.Warn("last good config cannot be restored", "commit", st.Good.Commit.String(), "err", err, "problems", len(probs))
		return
	}
	rev.At = st.Good.At
	l.current = rev
}

// evaluate reads, parses and checks the config at commit. It returns the
// revision when valid, or the problems when not; the error is for a
// failure to read the mirror. l.mu is held.
func (l *Loader) evaluate(commit plumbing.Hash) (*Revision, []manifest.Problem, error) {
	repo, err := l.m.Repository(l.loc.URL)
	if err != nil {
		return nil, nil, err
	}
	file := path.Join(l.loc.Dir, manifest.FileName)
	tree, err := gitwatch.TreeAt(repo, commit, l.loc.Dir)
	if err != nil {
		return nil, []manifest.Problem{{File: file, Message: "config folder missing in commit: " + err.Error()}}, nil
	}
	f, err := tree.File(manifest.FileName)
	if err != nil {
		return nil, []manifest.Problem{{File: file, Message: "missing from the config repo"}}, nil
	}
	if probs, ok := l.refused[f.Hash]; ok {
		return nil, probs, nil
	}
	data, err := f.Contents()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s at %s: %w", file, commit, err)
	}
	cfg, warns, err := parse(file, []byte(data))
	if err != nil {
		probs := []manifest.Problem{{File: file, Message: err.Error()}}
		var errs manifest.Errors
		if errors.As(err, &errs) {
			probs = append([]manifest.Problem(errs), warns...)
		}
		if l.refused == nil || len(l.refused) >= maxRefused {
			l.refused = map[plumbing.Hash][]manifest.Problem{}
		}
		l.refused[f.Hash] = probs
		return nil, probs, nil
	}
	src := gitwatch.NewSources(l.m, cfg, l.loc, tree, commit)
	var errs []manifest.Problem
	for _, p := range cfg.CheckImages(src) {
		if p.Warning {
			warns = append(warns, p)
		} else {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, append(errs, warns...), nil
	}
	return &Revision{Commit: githash.Hash(commit), Config: cfg, Warnings: warns, Sources: src, Location: l.loc, At: time.Now()}, nil, nil
}

// shown is loc as it may be shown and stored: without user information.
func shown(loc gitwatch.ConfigLocation) gitwatch.ConfigLocation {
	loc.URL = gitwatch.RedactURL(loc.URL)
	return loc
}

func (l *Loader) save() error {
	st := record{Location: shown(l.loc), Rejected: l.rejected}
	if l.current != nil {
		st.Good = &struct {
			Commit githash.Hash `json:"commit"`
			At     time.Time    `json:"at"`
		}{l.current.Commit, l.current.At}
	}
	return atomicfile.WriteJSON(l.state, st)
}

// ReadState returns the last good config commit and the last
// rejection recorded under root, for a status command; a zero hash when
// none.
func ReadState(root string) (loc gitwatch.ConfigLocation, good githash.Hash, rejected *Rejection, err error) {
	b, err := os.ReadFile(rootdir.ConfigState(root))
	if errors.Is(err, fs.ErrNotExist) {
		return loc, good, nil, nil
	}
	if err != nil {
		return loc, good, nil, err
	}
	var st record
	if err := json.Unmarshal(b, &st); err != nil {
		return loc, good, nil, fmt.Errorf("read config state: %w", err)
	}
	if st.Good != nil {
		good = st.Good.Commit
	}
	return st.Location, good, st.Rejected, nil
}
