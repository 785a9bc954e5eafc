package gitwatch

import (
	"fmt"
	"io"
	"path"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/manifest"
)

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
	t, err := TreeAt(repo, ref.Hash(), co.Path)
	return courseTree{repo: repo, tree: t, commit: ref.Hash(), err: err}
}
