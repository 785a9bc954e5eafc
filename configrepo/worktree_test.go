package configrepo

import (
	"path/filepath"
	"testing"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// A config folder inside a linked work tree (git worktree add), as make run
// uses examples/ of a developer's checkout: its branch lives in the main
// repository's git directory, so that is what gets mirrored; the mirror of
// the work tree's own path found no branch at all.
func TestConfigInLinkedWorkTree(t *testing.T) {
	conf := testenv.NewRepo(t)
	conf.Commit(t, map[string]string{"README": "main branch"}, "init")
	linked := filepath.Join(t.TempDir(), "linked")
	testenv.Git(t, conf.Work, "worktree", "add", "-q", "-b", "feature", linked)
	wt := &testenv.Repo{Work: linked, Bare: conf.Bare}
	wt.Commit(t, map[string]string{
		"site/courses.yaml":                 "version: 1\ncourses:\n  local:\n    repo: .\n    path: course\n",
		"site/course/.nbhosting/Dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	}, "config on a branch of the linked work tree")

	loc, err := gitwatch.LocateConfig(filepath.Join(linked, "site"), "")
	if err != nil {
		t.Fatal(err)
	}
	if loc.URL != filepath.Join(conf.Work, ".git") || loc.Branch != "feature" || loc.Dir != "site" {
		t.Fatalf("gitwatch.LocateConfig: got %+v", loc)
	}
	root := t.TempDir()
	l := NewLoader(gitwatch.NewMirrors(root, testLogger(t), gitwatch.Options{}), root, loc, nil, testLogger(t))
	res, err := l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current == nil || res.Rejected != nil {
		t.Fatalf("load: got %+v", res)
	}
	if _, ok := res.Current.Config.Courses["local"]; !ok {
		t.Fatalf("courses: %v", res.Current.Config.CourseNames())
	}
}
