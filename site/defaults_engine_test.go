package site

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/token"
)

// TestSiteDefaultsEndToEnd: a site whose courses.yaml says nothing about
// containers, over a course image on a docker-stacks-like base. Sync builds
// it; a spawn hands out a token the server takes; a site opened again on
// the same ROOT (a restarted daemon) probes the server with the same token,
// counts it idle and stops it once idle has passed.
func TestSiteDefaultsEndToEnd(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	ctx := t.Context()
	base := jupytertest.Stacks(t, cli)
	course := "nbhtest-sdef-" + fjtest.Suffix()
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, course) })
	fjtest.CleanupContainers(t, cli, course+naming.Sep)

	cfgDir, root := t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"courses.yaml": fmt.Sprintf("version: 1\ndefaults:\n  idle: %s\ncourses:\n  %s:\n    repo: .\n    path: course\n", testIdle, course),
		"course/docker-image/nbhosting.Dockerfile": fmt.Sprintf("FROM %s\nUSER root\nCOPY start-in-dir-as-uid.sh %s\n", base, images.StartScriptPath),
		"course/lesson.ipynb":                      "{}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(cfgDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, cfgDir, "init", "-q", "-b", "main")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "site")

	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	open := func() *Site {
		s, err := New(Options{Config: cfgDir, Root: root, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatalf("sync: %v", err)
	}
	sp, err := s.Spawn(ctx, course, "alice", "1234")
	if err != nil {
		t.Fatal(err)
	}
	if want, err := token.New(rootdir.TokenKey(root)).For(course, "alice"); err != nil || sp.Token != want {
		t.Fatalf("spawn token %q, want the one the site key derives (%v)", sp.Token, err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", sp.URL+"api/kernels?no_track_activity=1", nil)
	req.Header.Set("Authorization", "token "+sp.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the server refuses the spawn's token: %s", resp.Status)
	}

	// Restarted: a new Site on the same ROOT. At once, the pass keeps
	// alice's server (testIdle has not passed); pastIdle on, it stops it.
	s = open()
	stopsWhenIdle(t, s, "alice")
	c, err := s.ctrs.Get(ctx, course, "alice")
	if err != nil || c.State != containers.Stopped {
		t.Fatalf("after the pass: %+v, %v; want stopped", c, err)
	}
}

// testIdle is the idle time of the site engine tests that watch a server
// go idle, and pastIdle the time a pass's clock is moved on to pass it.
// testIdle is long enough that a fresh server is still young at the first
// pass on a starved machine: a 1m idle once stopped one there before the
// test's first pass (spawn, checks and the pass took longer than a minute).
const (
	testIdle = "10m"
	pastIdle = 15 * time.Minute
)

// stopsWhenIdle checks that the student's server, fresh and without a
// kernel, is stopped as idle by a pass pastIdle on.
func stopsWhenIdle(t *testing.T, s *Site, student string) {
	t.Helper()
	settled(t, s, student)
	defer func(old func() time.Time) { s.clock = old }(s.clock)
	s.clock = func() time.Time { return time.Now().Add(pastIdle) }
	rep, err := s.Pass(t.Context(), PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := actionFor(rep.Actions, student)
	if a.Kind != reconcile.Stop || !strings.Contains(a.Reason, "no kernel, idle") || len(rep.Outcomes) != 1 || !rep.Outcomes[0].Done {
		t.Fatalf("%s on: %s (%s), outcomes %+v; want %s's server stopped as idle", pastIdle, a.Kind, a.Reason, rep.Outcomes, student)
	}
}

// settled runs passes at the real time until the student's fresh server is
// kept for its youth alone, not for the CPU its start-up used: the CPU a
// pass measures is real, so a test that moves the plan's clock on must
// first let a pass take the CPU baseline of a server that has settled.
func settled(t *testing.T, s *Site, student string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rep, err := s.Pass(t.Context(), PassOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := actionFor(rep.Actions, student)
		if a.Kind != reconcile.Keep {
			t.Fatalf("fresh server of %s: %s (%s), want keep", student, a.Kind, a.Reason)
		}
		if !strings.Contains(a.Reason, "CPU") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server of %s still uses CPU after 2 minutes: %s", student, a.Reason)
		}
		// Not in a tight loop: each pass's probe costs the server CPU.
		select {
		case <-time.After(2 * time.Second):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

func actionFor(actions []reconcile.Action, student string) reconcile.Action {
	for _, a := range actions {
		if a.Student == student {
			return a
		}
	}
	return reconcile.Action{}
}

// copyTree copies files of testdata/nbhosting/from into dir/to, through edit.
func copyTree(t *testing.T, from, to string, names []string, edit func(string) string) {
	t.Helper()
	for _, n := range names {
		src := filepath.Join("testdata/nbhosting", from, n)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(src)
		dst := filepath.Join(to, n)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(edit(string(b))), st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNbhostingCourseOnStacksWithDefaults: sample-course's real .nbhosting/
// over nbhosting's real core image, itself on a base that behaves like
// docker-stacks (an entrypoint handing over to jovyan, USER 1000), with
// every container setting left to nbh-sync but the nbhosting preset. The
// student's server runs as the student's uid, finds the course's static
// top-levels, is counted idle by a restarted site and stopped after idle.
func TestNbhostingCourseOnStacksWithDefaults(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	ctx := t.Context()
	base := jupytertest.Stacks(t, cli)
	ns := "nbhtest-" + fjtest.Suffix()
	scipy, course := ns+"/scipy-notebook", ns+"-sample"
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, scipy, course) })
	fjtest.CleanupContainers(t, cli, course+naming.Sep)

	dir := t.TempDir()
	cfgDir, courseDir, root := filepath.Join(dir, "config"), filepath.Join(dir, "course"), filepath.Join(dir, "root")
	copyTree(t, "images", filepath.Join(cfgDir, "images"), []string{"nbhosting-scipy-notebook.Dockerfile",
		"nbhosting-image-root.sh", "nbhosting-image-jovyan.sh", "start-in-dir-as-uid.sh"},
		func(s string) string { return strings.ReplaceAll(s, "FROM "+jupytertest.Image2, "FROM "+base) })
	copyTree(t, "sample-course", courseDir, []string{".nbhosting/Dockerfile", ".nbhosting/nbhosting.yaml", "README.md", "jupytext-python.py"},
		func(s string) string { return strings.ReplaceAll(s, "FROM nbhosting/", "FROM "+ns+"/") })
	writeTestFile(t, filepath.Join(courseDir, "media/logo.txt"), "sample-course media\n")
	testenv.Git(t, courseDir, "init", "-q", "-b", "main")
	testenv.Git(t, courseDir, "add", "-A")
	testenv.Git(t, courseDir, "commit", "-qm", "course")
	writeTestFile(t, filepath.Join(cfgDir, "courses.yaml"), "version: 1\ndefaults:\n  idle: "+testIdle+"\n  container: {preset: nbhosting}\n"+
		"images:\n  "+scipy+":\n    dockerfile: images/nbhosting-scipy-notebook.Dockerfile\n"+
		"courses:\n  "+course+":\n    repo: "+courseDir+"\n")
	testenv.Git(t, cfgDir, "init", "-q", "-b", "main")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "site")

	open := func() *Site {
		s, err := New(Options{Config: cfgDir, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	rep, err := s.Sync(ctx, SyncOptions{})
	for _, r := range rep.Builds {
		t.Logf("build %s: built=%v in %s %s", r.Image, r.Built, r.Duration.Round(100*time.Millisecond), r.Err)
	}
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	sp, err := s.Spawn(ctx, course, "alice", "1234")
	if err != nil {
		t.Fatal(err)
	}
	// The Jupyter server (python3 -m jupyter_server), however the start
	// script got there (exec or a runuser child), runs as the student.
	if ps := testenv.ProcessUIDs(t, cli, sp.ID, "-m jupyter_server"); len(ps) != 1 || !strings.HasPrefix(ps[0], "1234 ") {
		t.Errorf("Jupyter server processes (uid command) %q, want one, of uid 1234", ps)
	}
	for cmd, want := range map[string]string{
		"cat /home/jovyan/static/media/logo.txt": "sample-course media",
		"cat /opt/sample-course/built":           "sample-course image",
		`echo "$NBAUTOEVAL_LOG"`:                 "/home/jovyan/work/.nbautoeval",
	} {
		if out := testenv.Exec(t, cli, sp.ID, "1234", "sh", "-c", cmd); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want %q", cmd, out, want)
		}
	}

	s = open() // a restarted daemon: the same ROOT, so the same tokens
	stopsWhenIdle(t, s, "alice")
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
