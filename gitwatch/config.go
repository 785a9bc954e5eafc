package gitwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/manifest"
)

// ConfigLocation is where the config repo is: a remote (or local repo) URL,
// the branch followed, and the folder of courses.yaml inside the repo.
type ConfigLocation struct {
	URL    string `json:"url"`
	Branch string `json:"branch"`
	// Dir is the slash-separated folder of courses.yaml in the repo, ""
	// for the top.
	Dir string `json:"dir,omitempty"`
}

// LocateConfig interprets the --config flag: a git URL (branch defaults to
// manifest.DefaultBranch), a bare repo path, or a folder inside a git work
// tree, whose committed state is used with that folder as the place of
// courses.yaml. For local paths an empty branch means the branch HEAD is on.
func LocateConfig(location, branch string) (ConfigLocation, error) {
	if URLPassword(location) {
		return ConfigLocation{}, fmt.Errorf("config repo %s: the URL carries a password, which process listings, logs and state would show: give it in a file or an environment variable instead (--config-password-file, --config-password-env)", RedactURL(location))
	}
	if !isLocal(location) || (len(location) > 7 && location[:7] == "file://") {
		if branch == "" {
			branch = manifest.DefaultBranch
		}
		return ConfigLocation{URL: location, Branch: branch}, nil
	}
	p := localPath(location)
	if isGitDir(p) {
		repo, err := git.PlainOpen(p)
		if err != nil {
			return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
		}
		b, err := headBranch(repo, branch)
		return ConfigLocation{URL: p, Branch: b}, err
	}
	repo, err := git.PlainOpenWithOptions(p, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: not in a git repository: %w", p, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
	}
	top := wt.Filesystem.Root()
	rel, err := filepath.Rel(top, p)
	if err != nil {
		return ConfigLocation{}, fmt.Errorf("config repo %s: %w", p, err)
	}
	dir := filepath.ToSlash(rel)
	if dir == "." {
		dir = ""
	}
	b, err := headBranch(repo, branch)
	return ConfigLocation{URL: top, Branch: b, Dir: dir}, err
}

func headBranch(repo *git.Repository, branch string) (string, error) {
	if branch != "" {
		return branch, nil
	}
	head, err := repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return "", fmt.Errorf("read HEAD: %w", err)
	}
	if head.Type() != plumbing.SymbolicReference || !head.Target().IsBranch() {
		return "", errors.New("HEAD is detached: name a branch")
	}
	return head.Target().Short(), nil
}

// ConfigRevision is a config commit that passed validation.
type ConfigRevision struct {
	Commit   plumbing.Hash      `json:"commit"`
	Config   *manifest.Config   `json:"-"`
	Warnings []manifest.Problem `json:"warnings,omitempty"`
	// Sources answers for this revision: the config tree and the course
	// trees as fetched when it was loaded.
	Sources  *Sources       `json:"-"`
	Location ConfigLocation `json:"location"`
	At       time.Time      `json:"at"`
}

// Rejection is a config commit that failed validation and is not applied.
type Rejection struct {
	Commit   plumbing.Hash      `json:"commit"`
	Problems []manifest.Problem `json:"problems"`
	At       time.Time          `json:"at"`
}

// ConfigResult is what Load found.
type ConfigResult struct {
	// Current is the revision in force (nil if no good one was ever seen).
	Current *ConfigRevision
	// Changed is true when Current was replaced by this Load.
	Changed bool
	// Rejected is set when the branch head is a commit that failed
	// validation; Current is then the last good revision.
	Rejected *Rejection
}

// configState is persisted under {root}/state so that the last good
// revision survives a restart.
type configState struct {
	Location ConfigLocation `json:"location"`
	Good     *struct {
		Commit plumbing.Hash `json:"commit"`
		At     time.Time     `json:"at"`
	} `json:"good,omitempty"`
	Rejected *Rejection `json:"rejected,omitempty"`
}

// ConfigLoader follows the config repo: it fetches it, validates the head
// commit and applies it only when valid.
type ConfigLoader struct {
	m     *Mirrors
	loc   ConfigLocation
	creds *manifest.Credentials
	state string
	log   *slog.Logger

	// mu guards what follows; it is never held across network I/O, so
	// that readers (status, plan, webhooks) never wait for a fetch.
	mu       sync.Mutex
	current  *ConfigRevision
	rejected *Rejection
	restored bool
	// refused remembers the problems of courses.yaml blobs that failed to
	// parse, by blob hash, so that a rejected head is not parsed again on
	// every load and plan (a hostile one may be costly even to refuse).
	refused map[plumbing.Hash][]manifest.Problem
}

// maxRefused bounds ConfigLoader.refused.
const maxRefused = 16

// parse is manifest.Parse; tests count its calls.
var parse = manifest.Parse

// NewConfigLoader returns a loader of the config repo at loc, keeping its
// state in {root}/state/config.json. creds may be nil.
func NewConfigLoader(m *Mirrors, root string, loc ConfigLocation, creds *manifest.Credentials, log *slog.Logger) *ConfigLoader {
	return &ConfigLoader{m: m, loc: loc, creds: creds, state: filepath.Join(root, "state", "config.json"), log: log}
}

// Load fetches the config repo and returns the revision in force. A head
// that fails validation (courses.yaml missing or invalid, an image nobody
// can build) is reported in Rejected and the last good revision stays. On a
// fetch error Current is still the last good revision, and the error is
// returned beside it.
func (l *ConfigLoader) Load(ctx context.Context) (ConfigResult, error) {
	head, ferr := l.m.Update(ctx, l.loc.URL, l.loc.Branch, l.creds)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ferr != nil {
		l.restoreOnce()
		return ConfigResult{Current: l.current, Rejected: l.rejected}, fmt.Errorf("config repo: %w", ferr)
	}
	res, err := l.next(head.Commit)
	switch {
	case err != nil || (!res.Changed && res.Rejected == nil):
		return res, err
	case res.Rejected != nil:
		if l.rejected == nil || l.rejected.Commit != res.Rejected.Commit {
			l.log.Warn("config commit rejected", "commit", res.Rejected.Commit.String(), "problems", len(res.Rejected.Problems))
		}
		l.rejected = res.Rejected
		return res, l.save()
	}
	l.current, l.rejected = res.Current, nil
	l.log.Info("config applied", "commit", res.Current.Commit.String(), "warnings", len(res.Current.Warnings))
	return res, l.save()
}

// Fetch brings the mirror of the config repo up to date and applies
// nothing: Peek then sees the new head.
func (l *ConfigLoader) Fetch(ctx context.Context) error {
	if _, err := l.m.Update(ctx, l.loc.URL, l.loc.Branch, l.creds); err != nil {
		return fmt.Errorf("config repo: %w", err)
	}
	return nil
}

// Peek evaluates the head of the config repo's mirror (as the last fetch
// left it) like Load, but with no network, and applies and persists
// nothing: it is what plan shows.
func (l *ConfigLoader) Peek(context.Context) (ConfigResult, error) {
	head, err := l.m.Known(l.loc.URL, l.loc.Branch)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.restoreOnce()
		return ConfigResult{Current: l.current, Rejected: l.rejected}, fmt.Errorf("config repo: %w", err)
	}
	return l.next(head)
}

// Restored returns the revision in force without any network: the one
// loaded in this process, or the last good one recorded under root; nil
// when none is known.
func (l *ConfigLoader) Restored() *ConfigRevision {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.restoreOnce()
	return l.current
}

// restoreOnce restores the last good revision the first time it is asked
// for. l.mu is held.
func (l *ConfigLoader) restoreOnce() {
	if !l.restored {
		l.restored = true
		l.restore()
	}
}

// next evaluates the config head against the revision in force. l.mu is
// held; no network.
func (l *ConfigLoader) next(head plumbing.Hash) (ConfigResult, error) {
	l.restoreOnce()
	if l.current != nil && head == l.current.Commit {
		return ConfigResult{Current: l.current}, nil
	}
	if l.rejected != nil && head == l.rejected.Commit {
		return ConfigResult{Current: l.current, Rejected: l.rejected}, nil
	}
	rev, probs, err := l.evaluate(head)
	if err != nil {
		return ConfigResult{Current: l.current, Rejected: l.rejected}, err
	}
	if rev == nil {
		return ConfigResult{Current: l.current, Rejected: &Rejection{Commit: head, Problems: probs, At: time.Now()}}, nil
	}
	return ConfigResult{Current: rev, Changed: true}, nil
}

// restore brings back the last good revision from the state file, from the
// mirror on disk, with no network.
func (l *ConfigLoader) restore() {
	b, err := os.ReadFile(l.state)
	if err != nil {
		return
	}
	var st configState
	if err := json.Unmarshal(b, &st); err != nil || st.Location != l.loc.shown() {
		return
	}
	l.rejected = st.Rejected
	if st.Good == nil {
		return
	}
	rev, probs, err := l.evaluate(st.Good.Commit)
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
func (l *ConfigLoader) evaluate(commit plumbing.Hash) (*ConfigRevision, []manifest.Problem, error) {
	repo, err := l.m.Repository(l.loc.URL)
	if err != nil {
		return nil, nil, err
	}
	file := path.Join(l.loc.Dir, manifest.FileName)
	tree, err := treeAt(repo, commit, l.loc.Dir)
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
	src := NewSources(l.m, cfg, l.loc, tree, commit)
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
	return &ConfigRevision{Commit: commit, Config: cfg, Warnings: warns, Sources: src, Location: l.loc, At: time.Now()}, nil, nil
}

// shown is loc as it may be shown and stored: without user information.
func (loc ConfigLocation) shown() ConfigLocation {
	loc.URL = RedactURL(loc.URL)
	return loc
}

func (l *ConfigLoader) save() error {
	st := configState{Location: l.loc.shown(), Rejected: l.rejected}
	if l.current != nil {
		st.Good = &struct {
			Commit plumbing.Hash `json:"commit"`
			At     time.Time     `json:"at"`
		}{l.current.Commit, l.current.At}
	}
	return writeJSON(l.state, st)
}

// ReadConfigState returns the last good config commit and the last
// rejection recorded under root, for a status command; a zero hash when
// none.
func ReadConfigState(root string) (loc ConfigLocation, good plumbing.Hash, rejected *Rejection, err error) {
	b, err := os.ReadFile(filepath.Join(root, "state", "config.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return loc, good, nil, nil
	}
	if err != nil {
		return loc, good, nil, err
	}
	var st configState
	if err := json.Unmarshal(b, &st); err != nil {
		return loc, good, nil, fmt.Errorf("read config state: %w", err)
	}
	if st.Good != nil {
		good = st.Good.Commit
	}
	return st.Location, good, st.Rejected, nil
}

// writeJSON writes v to p atomically (temporary file, then rename),
// readable by the daemon's user only: state names private repos and
// their errors.
func writeJSON(p string, v any) error { return atomicfile.WriteJSON(p, v) }

// Sources implements manifest.Sources from git trees: the config tree at
// the config commit, and each course's tree at the head its mirror holds.
type Sources struct {
	m          *Mirrors
	cfg        *manifest.Config
	loc        ConfigLocation
	configRepo *git.Repository // nil when the mirror cannot be opened
	configTree *object.Tree
	configHash plumbing.Hash

	mu      sync.Mutex
	courses map[string]courseTree
}

type courseTree struct {
	repo   *git.Repository
	tree   *object.Tree
	commit plumbing.Hash
	err    error
}

var _ manifest.Sources = (*Sources)(nil)

// NewSources answers for cfg: configTree is the tree of the folder of
// courses.yaml at configCommit of the config repo at loc.
func NewSources(m *Mirrors, cfg *manifest.Config, loc ConfigLocation, configTree *object.Tree, configCommit plumbing.Hash) *Sources {
	repo, _ := m.Repository(loc.URL)
	return &Sources{m: m, cfg: cfg, loc: loc, configRepo: repo, configTree: configTree, configHash: configCommit, courses: map[string]courseTree{}}
}

// own returns a copy of t for one caller. A go-git Tree caches the
// subtrees its lookups walk through in a map it writes on every nested
// lookup, so one Tree must never be read by two goroutines — and plans,
// passes and builds read the same revision's trees at once. A copy is one
// tree object decoded again, from the mirror's cache.
func own(repo *git.Repository, t *object.Tree) *object.Tree {
	if repo == nil || t == nil {
		return t
	}
	c, err := repo.TreeObject(t.Hash)
	if err != nil {
		return t
	}
	return c
}

// ConfigTree is the tree of the folder of courses.yaml at the config
// commit.
// Each call returns a tree of the caller's own.
func (s *Sources) ConfigTree() *object.Tree { return own(s.configRepo, s.configTree) }

// Refresh forgets the course trees read so far, so that the next question
// sees the heads the mirrors hold now (after a Syncer pass fetched them).
func (s *Sources) Refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.courses)
}

// ConfigFile implements manifest.Sources.
func (s *Sources) ConfigFile(p string) bool {
	_, err := s.ConfigTree().File(path.Clean(p))
	return err == nil
}

// ReadConfigFile implements manifest.Sources.
func (s *Sources) ReadConfigFile(p string) ([]byte, error) {
	f, err := s.configTree.File(path.Clean(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	r, err := f.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// CourseFile implements manifest.Sources.
func (s *Sources) CourseFile(course, p string) (exists, known bool) {
	tree, _, err := s.CourseTree(course)
	if err != nil {
		return false, false
	}
	_, err = tree.File(path.Clean(p))
	return err == nil, true
}

// CourseTree returns the tree of the course's root (its path:) and the
// commit it comes from: the config commit for a course with repo: . (its
// path: is then relative to the folder of courses.yaml), else its branch
// head in its mirror. It fails when the mirror lacks that branch. Each
// call returns a tree of the caller's own.
func (s *Sources) CourseTree(course string) (*object.Tree, plumbing.Hash, error) {
	s.mu.Lock()
	ct, ok := s.courses[course]
	if !ok {
		ct = s.courseTree(course)
		s.courses[course] = ct
	}
	s.mu.Unlock()
	return own(ct.repo, ct.tree), ct.commit, ct.err
}

func (s *Sources) courseTree(course string) courseTree {
	co, ok := s.cfg.Courses[course]
	if !ok {
		return courseTree{err: fmt.Errorf("no course %s", course)}
	}
	if co.Repo == "." {
		if co.Path == "" {
			return courseTree{repo: s.configRepo, tree: s.configTree, commit: s.configHash}
		}
		t, err := s.ConfigTree().Tree(path.Clean(co.Path))
		return courseTree{repo: s.configRepo, tree: t, commit: s.configHash, err: err}
	}
	repo, err := s.m.Repository(co.Repo)
	if err != nil {
		return courseTree{err: err}
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(co.Branch), true)
	if err != nil {
		return courseTree{err: fmt.Errorf("course %s: branch %s not fetched: %w", course, co.Branch, err)}
	}
	t, err := treeAt(repo, ref.Hash(), co.Path)
	return courseTree{repo: repo, tree: t, commit: ref.Hash(), err: err}
}
