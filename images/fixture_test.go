package images

import (
	"sort"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/nbhosting/nbh-sync/manifest"
)

// file is a fixture file: content, or a symlink target when link is set.
type file struct {
	data string
	exec bool
	link bool
}

// gitTree stores files as git objects in st and returns the root tree, the
// way a commit's tree is read from a repository.
func gitTree(t *testing.T, st *memory.Storage, files map[string]file) *object.Tree {
	t.Helper()
	h := writeTree(t, st, files, "")
	tree, err := object.GetTree(st, h)
	if err != nil {
		t.Fatalf("read tree: %v", err)
	}
	return tree
}

func writeTree(t *testing.T, st *memory.Storage, files map[string]file, dir string) plumbing.Hash {
	t.Helper()
	var entries []object.TreeEntry
	subdirs := map[string]bool{}
	for p, f := range files {
		rel, ok := strings.CutPrefix(p, dir)
		if !ok {
			continue
		}
		name, _, nested := strings.Cut(rel, "/")
		if nested {
			if !subdirs[name] {
				subdirs[name] = true
				entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: writeTree(t, st, files, dir+name+"/")})
			}
			continue
		}
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, _ := obj.Writer()
		w.Write([]byte(f.data))
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		mode := filemode.Regular
		switch {
		case f.link:
			mode = filemode.Symlink
		case f.exec:
			mode = filemode.Executable
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: mode, Hash: h})
	}
	// git's order: directories sort as if their name ended with "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	tree := &object.Tree{Entries: entries}
	obj := st.NewEncodedObject()
	if err := tree.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := st.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// site is a fixture config repo plus course repos.
type site struct {
	st      *memory.Storage
	config  map[string]file
	courses map[string]map[string]file // course -> files of its repo
	roots   map[string]string          // course -> path:
}

func newSite() *site {
	return &site{st: memory.NewStorage(), config: map[string]file{}, courses: map[string]map[string]file{}, roots: map[string]string{}}
}

// trees snapshots the site as Trees (one "commit" of every repo).
func (s *site) trees(t *testing.T) Trees {
	t.Helper()
	cfg := gitTree(t, s.st, s.config)
	courses := map[string]*object.Tree{}
	for name, files := range s.courses {
		courses[name] = gitTree(t, s.st, files)
	}
	return Trees{
		Config: cfg, ConfigSource: "file:///config@" + cfg.Hash.String()[:7],
		Course: func(course string) (*object.Tree, string, string, error) {
			tree, ok := courses[course]
			if !ok {
				return nil, "", "", nil
			}
			root := s.roots[course]
			return tree, root, "file:///" + course + "@" + tree.Hash.String()[:7] + ":" + root, nil
		},
	}
}

// config parses a courses.yaml for the fixtures.
func parseConfig(t *testing.T, yaml string) *manifest.Config {
	t.Helper()
	cfg, _, err := manifest.Parse("courses.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse courses.yaml: %v", err)
	}
	return cfg
}
