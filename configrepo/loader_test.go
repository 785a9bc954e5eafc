package configrepo

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/rootdir"
)

func courseYAML(courseURL, idle string) string {
	return fmt.Sprintf(`version: 1
defaults:
  idle: %s
courses:
  intro:
    repo: %s
    path: intro
  local:
    repo: .
    path: local-course
    image: intro
`, idle, courseURL)
}

func TestLoaderAndSyncer(t *testing.T) {
	course := testenv.NewRepo(t)
	cc1 := course.Commit(t, map[string]string{"intro/nb.ipynb": "v1", "other/x": "x"}, "course v1")

	// The config lives in a subfolder of a work tree: its committed state
	// is used, not the files on disk.
	conf := testenv.NewRepo(t)
	conf.Commit(t, map[string]string{
		"site/courses.yaml":            courseYAML(course.URL(), "2h"),
		"site/images/intro.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"site/local-course/hello.txt":  "hello",
	}, "good config")
	loc, err := gitwatch.LocateConfig(filepath.Join(conf.Work, "site"), "")
	if err != nil {
		t.Fatal(err)
	}
	if loc.URL != conf.Work || loc.Branch != "main" || loc.Dir != "site" {
		t.Fatalf("gitwatch.LocateConfig: got %+v", loc)
	}
	// An uncommitted edit is not seen.
	if err := os.WriteFile(filepath.Join(conf.Work, "site/courses.yaml"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	m := gitwatch.NewMirrors(root, testLogger(t), gitwatch.Options{})
	l := NewLoader(m, root, loc, nil, testLogger(t))
	res, err := l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current == nil || !res.Changed || res.Rejected != nil {
		t.Fatalf("first load: got %+v", res)
	}
	good1 := res.Current.Commit

	s := gitwatch.NewSyncer(m, root, testLogger(t), 2)
	st, err := s.Sync(t.Context(), res.Current.Config, res.Current.Location, res.Current.Commit)
	if err != nil {
		t.Fatal(err)
	}
	intro, _ := st.Course("intro")
	if intro.Commit.String() != cc1 || intro.Error != "" || intro.FetchedAt.IsZero() {
		t.Fatalf("intro status: %+v", intro)
	}
	testenv.EqualTree(t, "intro", testenv.ReadTree(t, rootdir.Course(root, "intro")), map[string]string{"nb.ipynb": "v1"})
	testenv.EqualTree(t, "local", testenv.ReadTree(t, rootdir.Course(root, "local")), map[string]string{"hello.txt": "hello"})

	// A bad commit (bad duration) is rejected; the good one stays.
	testenv.Git(t, conf.Work, "checkout", "-q", "--", "site/courses.yaml")
	conf.Commit(t, map[string]string{"site/courses.yaml": courseYAML(course.URL(), "2 hours")}, "bad config")
	res, err = l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current == nil || res.Current.Commit != good1 || res.Changed || res.Rejected == nil {
		t.Fatalf("bad commit: got %+v", res)
	}
	if !strings.Contains(fmt.Sprint(res.Rejected.Problems), "site/courses.yaml:3") {
		t.Fatalf("rejection problems lack the line: %v", res.Rejected.Problems)
	}

	// After a restart, the last good revision is still in force.
	m2 := gitwatch.NewMirrors(root, testLogger(t), gitwatch.Options{})
	l2 := NewLoader(m2, root, loc, nil, testLogger(t))
	res, err = l2.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current == nil || res.Current.Commit != good1 || res.Rejected == nil {
		t.Fatalf("after restart: got %+v", res)
	}
	if _, good, rej, err := ReadState(root); err != nil || good != good1 || rej == nil {
		t.Fatalf("config state: %s %v %v", good, rej, err)
	}

	// An image nobody can build rejects the commit as a whole too, when
	// the config repo is at fault (no course is named like the image);
	// a course image whose course has no Dockerfile is only a warning:
	// that course's business, which must not block the site.
	testenv.Git(t, conf.Work, "rm", "-q", "site/images/intro.dockerfile")
	conf.Commit(t, map[string]string{"site/courses.yaml": strings.Replace(courseYAML(course.URL(), "3h"), "image: intro", "image: nothing", 1)}, "no dockerfile")
	res, err = l2.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current.Commit != good1 || res.Rejected == nil {
		t.Fatalf("unbuildable image: got %+v", res.Rejected)
	}
	for _, p := range res.Rejected.Problems {
		switch {
		case strings.Contains(p.Message, "image nothing cannot be built"):
			if p.Warning {
				t.Errorf("config's own fault is a warning: %s", p)
			}
		case strings.Contains(p.Message, "image intro cannot be built"):
			if !p.Warning {
				t.Errorf("a course's missing Dockerfile rejects the config: %s", p)
			}
		default:
			t.Errorf("unexpected problem %s", p)
		}
	}
	if len(res.Rejected.Problems) != 2 {
		t.Errorf("problems %v", res.Rejected.Problems)
	}

	// A good commit replaces it; the course moves on too.
	good3 := conf.Commit(t, map[string]string{"site/courses.yaml": courseYAML(course.URL(), "3h"), "site/images/intro.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", "site/local-course/hello.txt": "hello 2"}, "good again")
	cc2 := course.Commit(t, map[string]string{"intro/nb.ipynb": "v2", "intro/new.py": "print()"}, "course v2")
	res, err = l2.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Current.Commit.String() != good3 || !res.Changed || res.Rejected != nil {
		t.Fatalf("good again: got %+v", res)
	}
	st, err = gitwatch.NewSyncer(m2, root, testLogger(t), 2).Sync(t.Context(), res.Current.Config, res.Current.Location, res.Current.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := st.Course("intro"); c.Commit.String() != cc2 || !c.Changed {
		t.Fatalf("intro after push: %+v", c)
	}
	testenv.EqualTree(t, "intro v2", testenv.ReadTree(t, rootdir.Course(root, "intro")), map[string]string{"nb.ipynb": "v2", "new.py": "print()"})
	testenv.EqualTree(t, "local v2", testenv.ReadTree(t, rootdir.Course(root, "local")), map[string]string{"hello.txt": "hello 2"})

	// A course whose branch is deleted keeps its work tree and reports it.
	testenv.Git(t, course.Bare, "update-ref", "-d", "refs/heads/main")
	st, err = gitwatch.NewSyncer(m2, root, testLogger(t), 2).Sync(t.Context(), res.Current.Config, res.Current.Location, res.Current.Commit)
	if !errors.Is(err, gitwatch.ErrBranchNotFound) && (err == nil || !strings.Contains(err.Error(), "course intro")) {
		t.Fatalf("sync error: %v", err)
	}
	c, _ := st.Course("intro")
	if c.Error == "" || c.Commit.String() != cc2 {
		t.Fatalf("deleted branch: %+v", c)
	}
	read, err := gitwatch.ReadStatus(root)
	if err != nil || len(read.Courses) != 2 {
		t.Fatalf("gitwatch.ReadStatus: %+v %v", read, err)
	}
	testenv.EqualTree(t, "intro kept", testenv.ReadTree(t, rootdir.Course(root, "intro")), map[string]string{"nb.ipynb": "v2", "new.py": "print()"})
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
