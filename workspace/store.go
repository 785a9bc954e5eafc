package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Source is a course's content as a workspace is made or merged from it.
type Source struct {
	// Tree is the course's work tree on disk. It must not change while a
	// Snapshot of it is taken (gitwatch checks courses out between passes).
	Tree string
	// Commit is the commit Tree is checked out at: it names the Snapshot,
	// which is taken once per commit and exclude list, then reused.
	Commit string
	// Exclude is the course's own list of patterns of paths to keep out of
	// workspaces, on top of .git*, .ipynb_checkpoints and .nbhosting/
	// (syntax on matcher's doc: path.Match globs, gitignore-like).
	Exclude []string
}

// File is one course file of a Snapshot.
type File struct {
	SHA  string `json:"sha"`            // sha256 of its content, hex: the blob's name
	Exec bool   `json:"exec,omitempty"` // executable: written 0755, else 0644
}

// Snapshot is what a course held at a commit: every file that goes into
// workspaces, by its slash-separated path from the course's top.
type Snapshot struct {
	Commit string          `json:"commit"`
	Files  map[string]File `json:"files"`
}

// Paths is the snapshot's paths, sorted.
func (s *Snapshot) Paths() []string {
	ps := make([]string, 0, len(s.Files))
	for p := range s.Files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Store is one course's store of content, shared by all its workspaces:
//
//	DIR/blobs/AB/CDEF…      the content of a course file, named by its sha256
//	DIR/commits/C[-X].json  the Snapshot of commit C (X: a hash of the exclude list)
//
// Blobs are written once and never change; a Snapshot is written after its
// blobs are on disk. A Store is safe for concurrent use; two processes may
// share one directory (every write is a rename of identical content).
type Store struct {
	dir string

	mu    sync.Mutex
	snaps map[string]*Snapshot
}

// NewStore returns the store kept in dir, created on first write (0700).
func NewStore(dir string) *Store {
	return &Store{dir: dir, snaps: map[string]*Snapshot{}}
}

// Dir is the folder the store is kept in.
func (s *Store) Dir() string { return s.dir }

var commitRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func (s *Store) snapName(src Source) (string, error) {
	if !commitRE.MatchString(src.Commit) {
		return "", fmt.Errorf("commit %q: %w", src.Commit, ErrBadCommit)
	}
	name := src.Commit
	if len(src.Exclude) > 0 {
		name += "-" + shaOf([]byte(strings.Join(src.Exclude, "\x00")))[:12]
	}
	return filepath.Join(s.dir, "commits", name+".json"), nil
}

// Snapshot returns the snapshot of src: read from the store if it was taken
// before, else taken now — every course file not excluded is hashed and its
// content stored as a blob (once per content, whatever the commit), then
// the manifest is written. Only regular files are taken: symlinks and
// special files of the course tree stay out of workspaces.
func (s *Store) Snapshot(ctx context.Context, src Source) (*Snapshot, error) {
	name, err := s.snapName(src)
	if err != nil {
		return nil, err
	}
	m, err := newMatcher(src.Exclude)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sn, ok := s.snaps[name]; ok {
		return sn, nil
	}
	if b, err := os.ReadFile(name); err == nil {
		var sn Snapshot
		if err := json.Unmarshal(b, &sn); err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", src.Commit, err)
		}
		s.snaps[name] = &sn
		return &sn, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("snapshot %s: %w", src.Commit, err)
	}
	sn, err := s.take(ctx, src, m)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w", src.Commit, src.Tree, err)
	}
	b, err := json.Marshal(sn)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return nil, err
	}
	if err := writeFileSync(name, b, 0o600); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", src.Commit, err)
	}
	s.snaps[name] = sn
	return sn, nil
}

func (s *Store) take(ctx context.Context, src Source, m matcher) (*Snapshot, error) {
	sn := &Snapshot{Commit: src.Commit, Files: map[string]File{}}
	wrote := false
	err := filepath.WalkDir(src.Tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src.Tree, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if m.excluded(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		sha := shaOf(data)
		w, err := s.put(sha, data)
		if err != nil {
			return err
		}
		wrote = wrote || w
		sn.Files[rel] = File{SHA: sha, Exec: fi.Mode()&0o111 != 0}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if wrote {
		// The blobs are on disk before the manifest that names them.
		if err := syncFS(s.dir); err != nil {
			return nil, err
		}
	}
	return sn, nil
}

func (s *Store) blobPath(sha string) string {
	return filepath.Join(s.dir, "blobs", sha[:2], sha[2:])
}

// put stores data as the blob sha unless it is there; it reports whether
// it wrote.
func (s *Store) put(sha string, data []byte) (bool, error) {
	p := s.blobPath(sha)
	if _, err := os.Lstat(p); err == nil {
		return false, nil
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	fh, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return false, err
	}
	_, err = fh.Write(data)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(fh.Name(), p)
	}
	if err != nil {
		os.Remove(fh.Name())
		return false, err
	}
	return true, nil
}

// Read returns the content of blob sha.
func (s *Store) Read(sha string) ([]byte, error) {
	if len(sha) != 64 {
		return nil, fmt.Errorf("blob %q: %w", sha, fs.ErrNotExist)
	}
	b, err := os.ReadFile(s.blobPath(sha))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", sha[:12], err)
	}
	return b, nil
}
