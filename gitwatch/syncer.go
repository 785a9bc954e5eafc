package gitwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/internal/githash"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// DefaultConcurrency bounds the remotes a Syncer updates at once.
const DefaultConcurrency = 4

// DefaultWait is how long a pass waits for its slowest remote before it
// moves on without it (Syncer.Wait).
const DefaultWait = 20 * time.Second

// CourseStatus is the pull state of one course, as persisted for status.
type CourseStatus struct {
	Course string `json:"course"`
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	Path   string `json:"path,omitempty"`
	// Commit is the revision checked out in {root}/courses/{course}.
	Commit githash.Hash `json:"commit,omitzero"`
	// Forced is true when the last change of Commit was a force-push.
	Forced bool `json:"forced,omitempty"`
	// CheckedAt is the last successful check of the remote; FetchedAt the
	// last time it brought a new head.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	FetchedAt time.Time `json:"fetched_at,omitzero"`
	// Error is the last pass's failure for this course, if any; the work
	// tree then stays at Commit.
	Error   string    `json:"error,omitempty"`
	ErrorAt time.Time `json:"error_at,omitzero"`
	// Pending is true when Error says the remote's fetch was still
	// running: slow, not unreachable.
	Pending bool `json:"pending,omitempty"`
	// Changed is true when this pass checked out a new revision.
	Changed bool `json:"-"`
}

// Status is the pull state of every course, persisted in
// rootdir.PullStatus.
type Status struct {
	// ConfigCommit is the config revision the pass applied.
	ConfigCommit githash.Hash   `json:"config_commit,omitzero"`
	Courses      []CourseStatus `json:"courses"`
	At           time.Time      `json:"at"`
}

// Course returns the status of course, if any.
func (s Status) Course(name string) (CourseStatus, bool) {
	for _, c := range s.Courses {
		if c.Course == name {
			return c, true
		}
	}
	return CourseStatus{}, false
}

// Syncer does the pulling part of a pass: it updates every distinct remote
// of the config once and checks each course out into {root}/courses.
type Syncer struct {
	m           *Mirrors
	root        string
	log         *slog.Logger
	concurrency int
	// Wait is how long Sync waits for the remotes (DefaultWait if 0). A
	// remote still fetching then goes on in the background, its courses
	// keep their checkout and report it, and the next pass checks out
	// what it brought: one slow remote (a long history, a hung server)
	// never holds back the pull — and the builds after it — of the others.
	Wait time.Duration
	// Held, when set, names the courses on hold: Sync neither fetches
	// for them nor checks them out, and keeps their last status as it
	// was (a course sharing a remote with others still sees it fetched
	// for them, but its work tree does not move).
	Held func(course string) bool

	// pass serializes passes, hence all work on one course.
	pass sync.Mutex

	// trees keeps a work tree from being read while it is checked out: a
	// checkout holds it for writing, ReadTree for reading, so that what is
	// read of a tree is all of one commit. at is the commit each tree was
	// checked out at by this process (zero: a checkout failed half-way).
	trees sync.RWMutex
	at    map[string]plumbing.Hash
}

// ErrTreeUnknown: the course has no work tree at a known commit (never
// checked out, or its last checkout failed half-way).
var ErrTreeUnknown = errors.New("course work tree not at a known commit")

// ReadTree calls read with the course's work tree and the commit it is at,
// while no checkout of the tree runs: what read takes of the tree is all
// of that commit. Keep read short — checkouts wait for it. The commit is
// the one this process last checked out, else the one the status recorded.
func (s *Syncer) ReadTree(course string, read func(dir string, commit plumbing.Hash) error) error {
	s.trees.RLock()
	defer s.trees.RUnlock()
	commit, ok := s.at[course]
	if !ok {
		st, err := ReadStatus(s.root)
		if err != nil {
			return err
		}
		cs, _ := st.Course(course)
		commit = plumbing.Hash(cs.Commit)
	}
	if commit.IsZero() {
		return fmt.Errorf("course %s: %w", course, ErrTreeUnknown)
	}
	return read(rootdir.Course(s.root, course), commit)
}

// checkout checks commit out into the course's work tree, holding the
// trees' write lock, and remembers the commit the tree is at.
func (s *Syncer) checkout(ctx context.Context, course string, repo *git.Repository, commit plumbing.Hash, subpath, dest string) error {
	s.trees.Lock()
	defer s.trees.Unlock()
	if s.at == nil {
		s.at = map[string]plumbing.Hash{}
	}
	err := Checkout(ctx, repo, commit, subpath, dest)
	if err != nil {
		commit = plumbing.ZeroHash // half of one commit, half of another
	}
	s.at[course] = commit
	return err
}

// NewSyncer returns a syncer of the work trees under root. concurrency
// bounds the remotes updated at once (DefaultConcurrency if 0).
func NewSyncer(m *Mirrors, root string, log *slog.Logger, concurrency int) *Syncer {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &Syncer{m: m, root: root, log: log, concurrency: concurrency}
}

// Sync updates the remotes of cfg's courses and their work trees, records
// the status and returns it. cfg is the config at commit of the config repo
// at loc, where the courses kept in the config repo itself (repo: .) are
// checked out from. One course's failure does not stop the others; the
// error joins them all. A failed course keeps its previous work tree.
func (s *Syncer) Sync(ctx context.Context, cfg *manifest.Config, loc ConfigLocation, commit githash.Hash) (Status, error) {
	s.pass.Lock()
	defer s.pass.Unlock()
	start := time.Now()
	prev, _ := ReadStatus(s.root)

	type group struct {
		url      string
		creds    *manifest.Credentials
		branches []string
		courses  []string
	}
	groups := map[string]*group{}
	var keys []string
	held := func(name string) bool { return s.Held != nil && s.Held(name) }
	for _, name := range cfg.CourseNames() {
		if held(name) {
			continue
		}
		co := cfg.Courses[name]
		url := co.Repo
		if url == "." {
			url = loc.URL
		}
		// One group per mirror: courses on one remote share a check,
		// and two remotes on one host (another port) never do.
		k := mirrorKey(url)
		g, ok := groups[k]
		if !ok {
			g = &group{url: url}
			groups[k] = g
			keys = append(keys, k)
		}
		if g.creds == nil {
			g.creds = co.Credentials
		}
		if co.Repo != "." && !slices.Contains(g.branches, co.Branch) {
			g.branches = append(g.branches, co.Branch)
		}
		g.courses = append(g.courses, name)
	}

	results := make(map[string]CourseStatus, len(cfg.Courses))
	var mu sync.Mutex
	// gate lets the pass move on: checkouts run under its read lock, and
	// once the pass stops waiting (closed) no late one starts.
	var gate sync.RWMutex
	closed := false
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for _, k := range keys {
		g := groups[k]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var heads map[string]Head
			var err error
			if len(g.branches) > 0 {
				// A fetch may outlive the pass (see Wait): it is bounded by
				// the mirrors' timeout, not by the pass's end.
				heads, err = s.m.UpdateBranches(context.WithoutCancel(ctx), g.url, g.branches, g.creds)
			}
			gate.RLock()
			defer gate.RUnlock()
			if closed {
				return
			}
			for _, name := range g.courses {
				old, _ := prev.Course(name)
				st := s.course(ctx, loc, plumbing.Hash(commit), cfg.Courses[name], old, heads, err)
				mu.Lock()
				results[name] = st
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	wait := s.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	gate.Lock()
	closed = true
	gate.Unlock()

	out := Status{ConfigCommit: commit, At: time.Now()}
	var errs []error
	for _, name := range cfg.CourseNames() {
		if held(name) {
			old, _ := prev.Course(name)
			co := cfg.Courses[name]
			old.Course, old.Repo, old.Branch, old.Path = name, RedactURL(co.Repo), co.Branch, co.Path
			out.Courses = append(out.Courses, old)
			continue
		}
		mu.Lock()
		st, ok := results[name]
		mu.Unlock()
		if !ok {
			st = s.pending(cfg.Courses[name], prev, wait)
		}
		out.Courses = append(out.Courses, st)
		if st.Error != "" && !st.ErrorAt.Before(start) {
			errs = append(errs, fmt.Errorf("course %s: %s", name, st.Error))
		}
	}
	if err := atomicfile.WriteJSON(rootdir.PullStatus(s.root), out); err != nil {
		errs = append(errs, fmt.Errorf("write status: %w", err))
	}
	return out, errors.Join(errs...)
}

// pending is the status of a course whose remote is still fetching when
// the pass moves on: it keeps its checkout.
func (s *Syncer) pending(co manifest.Course, prev Status, wait time.Duration) CourseStatus {
	old, _ := prev.Course(co.Name)
	old.Course, old.Repo, old.Branch, old.Path = co.Name, RedactURL(co.Repo), co.Branch, co.Path
	old.Error = fmt.Sprintf("remote %s still fetching after %s: the pass went on without it; the next pass checks out what it brings", RedactURL(co.Repo), wait)
	old.ErrorAt, old.Pending = time.Now(), true
	s.log.Warn("course not updated", "course", co.Name, "err", old.Error)
	return old
}

// course brings one course's work tree to its head and returns its status.
func (s *Syncer) course(ctx context.Context, loc ConfigLocation, configCommit plumbing.Hash, co manifest.Course, old CourseStatus, heads map[string]Head, updateErr error) CourseStatus {
	now := time.Now()
	st := CourseStatus{Course: co.Name, Repo: RedactURL(co.Repo), Branch: co.Branch, Path: co.Path,
		Commit: old.Commit, Forced: old.Forced, CheckedAt: old.CheckedAt, FetchedAt: old.FetchedAt}
	log := s.log.With("course", co.Name)
	fail := func(err error) CourseStatus {
		// The status is shown to anyone (/api/status) and kept: no URL's
		// user name goes into it, whatever produced the error.
		st.Error, st.ErrorAt = RedactText(err.Error()), now
		var busy *BusyError
		st.Pending = errors.As(err, &busy)
		log.WarnContext(ctx, "course not updated", "err", st.Error)
		return st
	}
	var commit plumbing.Hash
	url := co.Repo
	if co.Repo == "." {
		// A course in the config repo follows the config revision in force.
		url, commit = loc.URL, configCommit
		st.Branch = loc.Branch
		st.CheckedAt = now
	} else {
		h, ok := heads[co.Branch]
		if !ok {
			if updateErr == nil {
				updateErr = fmt.Errorf("branch %s: %w", co.Branch, ErrBranchNotFound)
			}
			return fail(updateErr)
		}
		commit = h.Commit
		st.CheckedAt = h.At
		if h.Fetched {
			st.FetchedAt = h.At
		}
	}
	dest := rootdir.Course(s.root, co.Name)
	if githash.Hash(commit) == old.Commit && co.Path == old.Path && old.Error == "" {
		if _, err := os.Stat(dest); err == nil {
			return st
		}
	}
	repo, err := s.m.Repository(url)
	if err != nil {
		return fail(err)
	}
	subpath := co.Path
	if co.Repo == "." && loc.Dir != "" {
		subpath = filepath.ToSlash(filepath.Join(loc.Dir, co.Path))
	}
	if err := s.checkout(ctx, co.Name, repo, commit, subpath, dest); err != nil {
		return fail(err)
	}
	if githash.Hash(commit) != old.Commit {
		st.Forced = !old.Commit.IsZero() && !isAncestor(repo, plumbing.Hash(old.Commit), commit)
		st.Changed = true
		log.InfoContext(ctx, "course checked out", "commit", commit.String(), "forced", st.Forced)
	}
	st.Commit = githash.Hash(commit)
	return st
}

// ReadStatus returns the status last recorded under root; an empty one if
// none was.
func ReadStatus(root string) (Status, error) {
	b, err := os.ReadFile(rootdir.PullStatus(root))
	if errors.Is(err, fs.ErrNotExist) {
		return Status{}, nil
	}
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return st, nil
}
