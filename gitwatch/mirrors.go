// Package gitwatch keeps on-disk mirrors of the config repo and of the
// course repos, reads trees out of them, brings course work trees to a
// config revision (the Syncer), and turns file-system events and webhooks
// into "this remote may have changed" hints. Deciding which config
// revision is in force is configrepo's. All git work goes through go-git: the
// product never runs the git binary.
package gitwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// Defaults of Options. A fetch may take minutes for a good reason (a
// course's first clone, datasets and all, over a slow link; a busy host);
// a hanging remote is caught sooner by the head check.
const (
	DefaultTimeout      = 5 * time.Minute
	DefaultCheckTimeout = 10 * time.Second
	DefaultBackoffBase  = 10 * time.Second
	DefaultBackoffMax   = 15 * time.Minute
)

// Options tune Mirrors. The zero value is usable.
type Options struct {
	// Timeout bounds every fetch.
	Timeout time.Duration
	// CheckTimeout bounds the cheap remote-head check (listing refs). It
	// is short so that a hanging remote holds a pass only that long, after
	// which it backs off and the next passes skip it at once.
	CheckTimeout time.Duration
	// BackoffBase is the wait after the first failure of a remote; it
	// doubles with each further failure up to BackoffMax, with jitter.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Depth makes the first fetch of a branch from a network remote
	// shallow: that many commits (DefaultDepth when 0; negative: the full
	// history). Nothing nbh-sync does needs history — build keys, build
	// contexts and checkouts read the trees of one commit — while a course
	// with a long history would cost its whole pack on every try. Later
	// fetches add to it; Deepen fetches the full history when something
	// needs it. Local remotes are always fetched in full: that is cheap.
	Depth int
	// SafeDirectories are local repositories trusted whatever their owner
	// ("*": all), like git's safe.directory; any other local repository
	// must belong to the user nbh-sync runs as.
	SafeDirectories []string
	// ObjectCache is the size in bytes of the cache of git objects (commits,
	// trees, delta bases) shared by all mirrors; DefaultObjectCache when 0.
	ObjectCache int64
}

// DefaultObjectCache is the shared object cache's size. Objects are named
// by their content, so one cache serves every mirror; what a pass reads
// again (head commits, their trees) is small, and go-git's default of
// 96 MiB per repository grew with the number of courses.
const DefaultObjectCache = 8 << 20

// DefaultDepth is the depth of the first fetch of a network remote.
const DefaultDepth = 1

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = min(DefaultCheckTimeout, o.Timeout)
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	o.BackoffMax = max(o.BackoffMax, o.BackoffBase)
	if o.ObjectCache <= 0 {
		o.ObjectCache = DefaultObjectCache
	}
	switch {
	case o.Depth == 0:
		o.Depth = DefaultDepth
	case o.Depth < 0:
		o.Depth = 0
	}
	return o
}

// Head is where a branch of a remote stands after Update.
type Head struct {
	// Commit is the branch head, present in the mirror.
	Commit plumbing.Hash `json:"commit"`
	// Fetched is true when Update had to fetch (the head moved).
	Fetched bool `json:"fetched"`
	// Forced is true when the new head does not descend from the previous
	// one: the branch was force-pushed.
	Forced bool `json:"forced,omitempty"`
	// Previous is the head the mirror had before, if any.
	Previous plumbing.Hash `json:"previous,omitzero"`
	// At is when the remote was checked.
	At time.Time `json:"at"`
}

// ErrBranchNotFound is wrapped by the error of Update when the remote has no
// such branch (never pushed, or deleted). The mirror keeps what it had.
var ErrBranchNotFound = errors.New("branch not found on the remote")

// BackoffError is returned, without any network call, for a remote that
// failed recently and is waiting before the next try.
type BackoffError struct {
	URL      string
	Until    time.Time
	Failures int
	// Err is the last failure.
	Err error
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("remote %s backing off until %s after %d failure(s): %v",
		RedactURL(e.URL), e.Until.Format(time.RFC3339), e.Failures, e.Err)
}

// BusyError is returned, without waiting, for a remote whose fetch is still
// running (started by an earlier pass that moved on without it).
type BusyError struct{ URL string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("remote %s: a fetch is still running; its result will be used by the next pass", RedactURL(e.URL))
}

func (e *BackoffError) Unwrap() error { return e.Err }

// RetryAt tells the pass's retry (package retry) when the backoff ends.
func (e *BackoffError) RetryAt() time.Time { return e.Until }

// Mirrors keeps one bare mirror per distinct remote under {root}/mirrors,
// shared by every course that uses the remote. It is safe for concurrent
// use: calls on one remote are serialized, calls on different remotes run
// in parallel, and a remote in backoff does not delay the others.
type Mirrors struct {
	dir  string
	log  *slog.Logger
	opts Options
	// objects is the object cache of every mirror's storage.
	objects cache.Object

	mu      sync.Mutex
	remotes map[string]*remote
}

// remote is the state of one mirror.
type remote struct {
	key, dir string
	objects  cache.Object

	// work serializes network and writes on this mirror.
	work sync.Mutex
	// opening guards repo and reader, so that readers of the mirror never
	// wait for a fetch in progress (which holds work).
	opening sync.Mutex
	// repo is the fetches' (under work). go-git's storage is not safe for
	// concurrent use, so readers get another instance of it: reader,
	// opened with its pack indexes loaded (after which reading it writes
	// nothing), and replaced after every fetch so that new packs are seen.
	// A fetch writes new pack files and refs beside what readers read.
	repo   *git.Repository
	reader *git.Repository

	// guarded by Mirrors.mu, so that a backoff check never waits for a
	// fetch in progress.
	failures int
	until    time.Time
	lastErr  error
	// heads are the branch heads the last update brought, by branch.
	heads map[string]plumbing.Hash
}

// NewMirrors returns the mirrors kept under root (rootdir.Mirrors).
func NewMirrors(root string, log *slog.Logger, opts Options) *Mirrors {
	installLocalTransport()
	opts = opts.withDefaults()
	return &Mirrors{
		dir:     rootdir.Mirrors(root),
		log:     log,
		opts:    opts,
		objects: cache.NewObjectLRU(cache.FileSize(opts.ObjectCache)),
		remotes: map[string]*remote{},
	}
}

func (m *Mirrors) remote(url string) *remote {
	key := mirrorKey(url)
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.remotes[key]
	if !ok {
		r = &remote{key: key, dir: filepath.Join(m.dir, mirrorName(url)), objects: m.objects}
		m.remotes[key] = r
	}
	return r
}

// Dir returns the directory of the mirror of url.
func (m *Mirrors) Dir(url string) string { return m.remote(url).dir }

// Update brings the mirror of url up to date for branch and returns the
// branch head. It first lists the remote's refs and fetches only when the
// head differs from the mirror's. Errors: *BackoffError (no network call
// made) while the remote waits after a failure; ErrBranchNotFound when the
// remote lacks the branch; otherwise the failure, secrets redacted, which
// starts or extends the remote's backoff.
func (m *Mirrors) Update(ctx context.Context, url, branch string, creds *manifest.Credentials) (Head, error) {
	heads, err := m.UpdateBranches(ctx, url, []string{branch}, creds)
	return heads[branch], err
}

// UpdateBranches is Update for several branches of one remote, with one
// listing of its refs and at most one fetch. It returns the heads of the
// branches it could update; the error joins the failures of the others.
func (m *Mirrors) UpdateBranches(ctx context.Context, url string, branches []string, creds *manifest.Credentials) (map[string]Head, error) {
	r := m.remote(url)
	if err := m.checkBackoff(r, url); err != nil {
		return nil, err
	}
	// One slow remote never holds a caller: a fetch still running is
	// reported at once rather than waited for.
	if !r.work.TryLock() {
		return nil, &BusyError{URL: url}
	}
	defer r.work.Unlock()
	heads, err := m.update(ctx, r, url, branches, creds)
	var bnf *branchError
	if err != nil && !(errors.As(err, &bnf) && len(heads)+countBranchErrors(err) == len(branches)) {
		m.fail(ctx, r, err)
		return heads, err
	}
	m.succeed(ctx, r)
	m.remember(r, heads)
	return heads, err
}

func (m *Mirrors) remember(r *remote, heads map[string]Head) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.heads == nil {
		r.heads = map[string]plumbing.Hash{}
	}
	for b, h := range heads {
		r.heads[b] = h.Commit
	}
}

// Known returns the head of branch that the mirror of url holds, with no
// network and without waiting for a fetch in progress: the head the last
// Update brought, else the one recorded in the mirror on disk. It fails
// when the mirror never had the branch.
func (m *Mirrors) Known(url, branch string) (plumbing.Hash, error) {
	r := m.remote(url)
	m.mu.Lock()
	h, ok := r.heads[branch]
	m.mu.Unlock()
	if ok {
		return h, nil
	}
	repo, err := m.Repository(url)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("mirror of %s: branch %s not fetched yet", RedactURL(url), branch)
	}
	return ref.Hash(), nil
}

// branchError says a branch is missing; it is not a failure of the remote.
type branchError struct{ url, branch string }

func (e *branchError) Error() string {
	return fmt.Sprintf("remote %s: branch %s: %v", e.url, e.branch, ErrBranchNotFound)
}
func (e *branchError) Unwrap() error { return ErrBranchNotFound }

func countBranchErrors(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range j.Unwrap() {
			var be *branchError
			if errors.As(e, &be) {
				n++
			}
		}
		return n
	}
	var be *branchError
	if errors.As(err, &be) {
		return 1
	}
	return 0
}

func (m *Mirrors) checkBackoff(r *remote, url string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.failures > 0 && time.Now().Before(r.until) {
		return &BackoffError{URL: url, Until: r.until, Failures: r.failures, Err: r.lastErr}
	}
	return nil
}

func (m *Mirrors) fail(ctx context.Context, r *remote, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.failures++
	d := m.opts.BackoffBase << min(r.failures-1, 20)
	if d <= 0 || d > m.opts.BackoffMax {
		d = m.opts.BackoffMax
	}
	// Full jitter on the upper half: remotes that failed together do not
	// retry together.
	d = d/2 + rand.N(d/2+1)
	r.until = time.Now().Add(d)
	r.lastErr = err
	m.log.WarnContext(ctx, "remote failed, backing off", "remote", r.key, "failures", r.failures, "retry_in", d.Round(time.Millisecond), "err", err)
}

func (m *Mirrors) succeed(ctx context.Context, r *remote) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.failures > 0 {
		m.log.InfoContext(ctx, "remote recovered", "remote", r.key, "failures", r.failures)
	}
	r.failures, r.until, r.lastErr = 0, time.Time{}, nil
}

// Reset forgets the backoff of url, so that the next Update tries at once
// (a webhook said the remote changed, or an operator asked).
func (m *Mirrors) Reset(url string) {
	r := m.remote(url)
	m.mu.Lock()
	defer m.mu.Unlock()
	r.failures, r.until, r.lastErr = 0, time.Time{}, nil
}

func (m *Mirrors) update(ctx context.Context, r *remote, rawURL string, branches []string, creds *manifest.Credentials) (map[string]Head, error) {
	furl := fetchURL(rawURL)
	url := RedactURL(rawURL) // what errors show
	if err := m.checkLocal(furl); err != nil {
		return nil, err
	}
	auth, secrets, err := authFor(furl, creds)
	if err != nil {
		return nil, fmt.Errorf("remote %s: credentials: %w", url, redact(err, secrets))
	}
	now := time.Now()
	refs, err := m.list(ctx, furl, auth)
	if err != nil && !errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return nil, redact(fmt.Errorf("list refs of %s: %w", url, err), secrets)
	}
	repo, err := r.open()
	if err != nil {
		return nil, fmt.Errorf("mirror of %s: %w", url, err)
	}
	heads := map[string]Head{}
	var errs []error
	var specs []config.RefSpec
	shallow := false
	for _, b := range branches {
		name := plumbing.NewBranchReferenceName(b)
		want, ok := refs[name]
		if !ok {
			errs = append(errs, &branchError{url: url, branch: b})
			continue
		}
		h := Head{Commit: want, At: now}
		if old, err := repo.Reference(name, false); err == nil {
			h.Previous = old.Hash()
		}
		if h.Previous == want && hasCommit(repo, want) {
			heads[b] = h
			continue
		}
		h.Fetched = true
		heads[b] = h
		specs = append(specs, config.RefSpec(fmt.Sprintf("+%s:%s", name, name)))
		if h.Previous.IsZero() && m.opts.Depth > 0 && !strings.HasPrefix(furl, "file://") {
			shallow = true
		}
	}
	if len(specs) > 0 {
		depth := 0
		if shallow {
			depth = m.opts.Depth
		}
		err := m.fetch(ctx, repo, furl, specs, auth, depth)
		r.fetched() // even a failed fetch may have written a pack
		if err != nil {
			return nil, redact(fmt.Errorf("fetch %s: %w", url, err), secrets)
		}
		for b, h := range heads {
			if !h.Fetched {
				continue
			}
			ref, err := repo.Reference(plumbing.NewBranchReferenceName(b), false)
			if err != nil {
				return nil, fmt.Errorf("fetch %s: branch %s missing after fetch: %w", url, b, err)
			}
			h.Commit = ref.Hash()
			if !h.Previous.IsZero() && h.Previous != h.Commit {
				h.Forced = !isAncestor(repo, h.Previous, h.Commit)
			}
			if h.Forced {
				m.log.WarnContext(ctx, "branch was force-pushed", "remote", r.key, "branch", b, "previous", h.Previous.String(), "commit", h.Commit.String())
			}
			heads[b] = h
		}
		m.log.DebugContext(ctx, "fetched", "remote", r.key, "branches", len(specs))
	}
	return heads, errors.Join(errs...)
}

// checkLocal refuses a local remote another user owns (see checkOwner).
func (m *Mirrors) checkLocal(furl string) error {
	p, ok := strings.CutPrefix(furl, "file://")
	if !ok {
		return nil
	}
	return checkOwner(p, m.opts.SafeDirectories)
}

// list returns the branch heads of the remote at furl.
func (m *Mirrors) list(ctx context.Context, furl string, auth transport.AuthMethod) (map[plumbing.ReferenceName]plumbing.Hash, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.CheckTimeout)
	defer cancel()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{furl}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return nil, err
	}
	out := make(map[plumbing.ReferenceName]plumbing.Hash, len(refs))
	for _, ref := range refs {
		if ref.Type() == plumbing.HashReference && ref.Name().IsBranch() {
			out[ref.Name()] = ref.Hash()
		}
	}
	return out, nil
}

func (m *Mirrors) fetch(ctx context.Context, repo *git.Repository, furl string, specs []config.RefSpec, auth transport.AuthMethod, depth int) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{furl}})
	err := rem.FetchContext(ctx, &git.FetchOptions{RefSpecs: specs, Auth: auth, Depth: depth, Tags: git.NoTags, Force: true})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// Deepen fetches the full history of branch into the mirror of url, for a
// caller that needs more than a shallow first fetch gave.
func (m *Mirrors) Deepen(ctx context.Context, url, branch string, creds *manifest.Credentials) error {
	r := m.remote(url)
	if err := m.checkBackoff(r, url); err != nil {
		return err
	}
	r.work.Lock()
	defer r.work.Unlock()
	furl := fetchURL(url)
	url = RedactURL(url)
	if err := m.checkLocal(furl); err != nil {
		return err
	}
	repo, err := r.open()
	if err != nil {
		return fmt.Errorf("mirror of %s: %w", url, err)
	}
	auth, secrets, err := authFor(furl, creds)
	if err != nil {
		return fmt.Errorf("remote %s: credentials: %w", url, redact(err, secrets))
	}
	name := plumbing.NewBranchReferenceName(branch)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", name, name))
	const all = 1<<31 - 1 // git's own --unshallow depth
	err = m.fetch(ctx, repo, furl, []config.RefSpec{spec}, auth, all)
	r.fetched()
	if err != nil {
		return redact(fmt.Errorf("deepen %s: %w", url, err), secrets)
	}
	return nil
}

// Repository returns the mirror of url for reading trees and commits, and
// only for that: it is shared by readers, never written, and does not
// wait for a fetch in progress. It fails if the mirror was never fetched.
func (m *Mirrors) Repository(url string) (*git.Repository, error) {
	r := m.remote(url)
	if _, err := os.Stat(filepath.Join(r.dir, "HEAD")); err != nil {
		return nil, fmt.Errorf("mirror of %s: not fetched yet", RedactURL(url))
	}
	r.opening.Lock()
	defer r.opening.Unlock()
	if r.reader != nil {
		return r.reader, nil
	}
	repo, err := git.Open(r.storage(), nil)
	if err != nil {
		return nil, err
	}
	// The first lookup loads the pack indexes: done here, while no other
	// goroutine holds this instance.
	_ = repo.Storer.HasEncodedObject(plumbing.ZeroHash)
	r.reader = repo
	return repo, nil
}

// fetched makes the next readers see what a fetch brought.
func (r *remote) fetched() {
	r.opening.Lock()
	defer r.opening.Unlock()
	r.reader = nil
}

// open opens or creates the bare mirror.
func (r *remote) open() (*git.Repository, error) {
	r.opening.Lock()
	defer r.opening.Unlock()
	if r.repo != nil {
		return r.repo, nil
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	st := r.storage()
	repo, err := git.Open(st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.Init(st, nil)
	}
	if err != nil {
		return nil, err
	}
	r.repo = repo
	return repo, nil
}

// largeObject is the size above which a blob is streamed from its pack
// rather than read whole: a course repo may hold big data files.
const largeObject = 1 << 20

// storage is the mirror's storage, over the object cache shared by all.
// go-git caches only whole objects it has read (never ones that point
// into a pack), by their hash, so one repository's entry is right for
// any other's; the cache locks itself.
func (r *remote) storage() *filesystem.Storage { return storage(r.dir, r.objects) }

// storage is the object storage of the git directory dir.
func storage(dir string, objects cache.Object) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), objects, filesystem.Options{LargeObjectThreshold: largeObject})
}

func hasCommit(repo *git.Repository, h plumbing.Hash) bool {
	_, err := repo.CommitObject(h)
	return err == nil
}

// isAncestor reports whether old is reachable from head.
func isAncestor(repo *git.Repository, old, head plumbing.Hash) bool {
	oc, err := repo.CommitObject(old)
	if err != nil {
		return false
	}
	hc, err := repo.CommitObject(head)
	if err != nil {
		return false
	}
	ok, err := oc.IsAncestor(hc)
	return err == nil && ok
}
