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
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/token"
)

// TestSiteDefaultsEndToEnd: a site whose courses.yaml says nothing about
// containers, over a course image on a docker-stacks-like base. Sync builds
// it; a spawn hands out a token the server takes; a site opened again on
// the same ROOT (a restarted daemon) probes the server with the same token,
// counts it idle and stops it once idle has passed.
func TestSiteDefaultsEndToEnd(t *testing.T) {
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	ctx := t.Context()
	base := jupytertest.Stacks(t, cli)
	course := "nbhtest-sdef-" + fjtest.Suffix()
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, course) })
	fjtest.CleanupContainers(t, cli, course+containers.NameSep)

	cfgDir, root := t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"courses.yaml": fmt.Sprintf("version: 1\ndefaults:\n  idle: 1m\ncourses:\n  %s:\n    repo: .\n    path: course\n", course),
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
	if want, err := token.New(token.Path(root)).For(course, "alice"); err != nil || sp.Token != want {
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
	// alice's server (idle: 1m has not passed); two minutes on, it stops it.
	s = open()
	stopsWhenIdle(t, s, "alice")
	c, err := s.ctrs.Get(ctx, course, "alice")
	if err != nil || c.State != containers.Stopped {
		t.Fatalf("after the pass: %+v, %v; want stopped", c, err)
	}
}

// stopsWhenIdle checks that the student's server, fresh and without a
// kernel, is stopped as idle by a pass two minutes on (the tests' idle is 1m).
func stopsWhenIdle(t *testing.T, s *Site, student string) {
	t.Helper()
	settled(t, s, student)
	defer func(old func() time.Time) { planAt = old }(planAt)
	planAt = func() time.Time { return time.Now().Add(2 * time.Minute) }
	rep, err := s.Pass(t.Context(), PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a := actionFor(rep.Actions, student)
	if a.Kind != reconcile.Stop || !strings.Contains(a.Reason, "no kernel, idle") || len(rep.Outcomes) != 1 || !rep.Outcomes[0].Done {
		t.Fatalf("two minutes on: %s (%s), outcomes %+v; want %s's server stopped as idle", a.Kind, a.Reason, rep.Outcomes, student)
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
