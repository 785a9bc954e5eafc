package reconcile_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/token"
)

// courseImage builds a course image the way nbhosting's core images are
// made from docker-stacks (the start script added, nothing else changed:
// USER 1000 and the entrypoint that hands over to jovyan stay), labelled as
// this site's builder labels its builds, tagged course:latest, removed when
// the test ends.
func courseImage(t *testing.T, cli *client.Client, course string, extra ...testenv.File) {
	t.Helper()
	base := jupytertest.Stacks(t, cli)
	files := append([]testenv.File{
		// The labels of a build by this site (a spawn refuses any other),
		// first: no layer is shared with another test's image, which its
		// cleanup could prune while this build uses it.
		{Name: "Dockerfile", Data: fmt.Appendf(nil, "FROM %s\nLABEL %s=%s %s=%s\nCOPY start-in-dir-as-uid.sh %s\n",
			base, images.LabelImage, course, images.LabelBuildKey, strings.Repeat("0", 64), images.StartScriptPath)},
		{Name: "start-in-dir-as-uid.sh", Mode: 0o755, Data: images.StartScript},
	}, extra...)
	if _, err := testenv.BuildImage(t.Context(), cli, files, course+":latest"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), course+":latest", image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

// defaultsConfig is a courses.yaml that says nothing about containers:
// every container setting is nbh-sync's default.
func defaultsConfig(t *testing.T, course, extra string) *manifest.Config {
	t.Helper()
	cfg, _, err := manifest.Parse(manifest.FileName, fmt.Appendf(nil, "version: 1\ncourses:\n  %s:\n    repo: https://example.org/%s.git\n%s", course, course, extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// execAs runs cmd in container id as user (testenv.Exec).
func execAs(t *testing.T, cli *client.Client, id, user string, cmd ...string) string {
	t.Helper()
	return testenv.Exec(t, cli, id, user, cmd...)
}

// TestDefaultsServeTheStudentAndRetireWhenIdle is the default path end to
// end on a docker-stacks-like image (ENTRYPOINT handing over to jovyan,
// USER 1000, jupyter_server 2.15): a spawn with every container setting
// left to nbh-sync runs Jupyter as the student's uid and hands out a token
// the server takes; a pass made after a restart (a new token source on the
// same site key) reads the server, counts it idle since it started, and
// stops it once idle has passed.
func TestDefaultsServeTheStudentAndRetireWhenIdle(t *testing.T) {
	t.Parallel()
	cli := requireEngine(t)
	ctx := t.Context()
	course := "nbhtest-def-" + fjtest.Suffix()
	courseImage(t, cli, course)
	fjtest.CleanupContainers(t, cli, course+naming.Sep)

	cfg := defaultsConfig(t, course, "")
	co := cfg.Courses[course]
	// The shortest idle validation allows is a minute; the test waits for
	// a few seconds instead.
	const idle = 3 * time.Second
	co.Idle = manifest.Duration(idle)
	cfg.Courses[course] = co

	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "courses", course), 0o755); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	eng := scoped{containers.NewDocker(cli), course + naming.Sep}
	m := containers.New(eng, nil, log)
	m.StopTimeout = 5 * time.Second
	m.Tokens = token.New(rootdir.TokenKey(root))

	sp, err := m.Spawn(ctx, co, "alice", containers.SpawnOptions{Root: root, UID: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	// The Jupyter server (python3 -m jupyter_server), however the start
	// script got there (exec or a runuser child), runs as the student.
	if ps := testenv.ProcessUIDs(t, cli, sp.ID, "-m jupyter_server"); len(ps) != 1 || !strings.HasPrefix(ps[0], "1234 ") {
		t.Errorf("Jupyter server processes (uid command) %q, want one, of uid 1234", ps)
	}
	if sp.Token == "" {
		t.Fatal("spawn handed out no token")
	}
	for _, tt := range []struct {
		token string
		want  int
	}{{"", http.StatusForbidden}, {"wrong", http.StatusForbidden}, {sp.Token, http.StatusOK}} {
		req, _ := http.NewRequestWithContext(ctx, "GET", sp.URL+"api/kernels?no_track_activity=1", nil)
		if tt.token != "" {
			req.Header.Set("Authorization", "token "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET api/kernels with token %q: %s, want %d", tt.token, resp.Status, tt.want)
		}
	}
	inspect, err := cli.ContainerInspect(ctx, sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range inspect.Config.Labels {
		if strings.Contains(v, sp.Token) {
			t.Errorf("label %s holds the token", k)
		}
	}

	// A restarted daemon: new Manager, new token source, same site key.
	m2 := containers.New(eng, nil, log)
	m2.StopTimeout = 5 * time.Second
	m2.Tokens = token.New(rootdir.TokenKey(root))
	p := activity.New()
	p.SecondLook = 200 * time.Millisecond
	pass := &reconcile.Pass{Containers: m2, Prober: p, Root: root, Concurrency: 1, Log: log}

	obs, err := pass.Observe(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if r := obs.Activity[sp.ID]; r.State != activity.Answered || r.Kernels != 0 || r.Busy {
		t.Fatalf("probe: %+v, want answered, no kernel", r)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := pass.Run(ctx, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		plan, out := res.Actions, res.Outcomes
		if a := actionOf(plan, "alice"); a.Kind == reconcile.Stop {
			if !strings.Contains(a.Reason, "idle") || len(out) != 1 || !out[0].Done {
				t.Fatalf("stop %q, outcomes %+v", a.Reason, out)
			}
			break
		} else if a.Kind != reconcile.Keep || time.Now().After(deadline) {
			t.Fatalf("alice: %s (%s), want keep until idle, then stop", a.Kind, a.Reason)
		}
		select {
		case <-time.After(idle / 3):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	c, err := m2.Get(ctx, course, "alice")
	if err != nil || c.State != containers.Stopped {
		t.Fatalf("after the pass: %+v, %v; want stopped", c, err)
	}
}

// TestPresetNbhosting: a course written for nbhosting finds, with
// container: {preset: nbhosting}, what it has there: its modules/ on
// PYTHONPATH, its static top-levels read-only under ~/static, NBAUTOEVAL_LOG
// in the work directory, and .nbhosting/jupyter/ in ~/.jupyter, where the
// server reads it and can still write files of its own.
func TestPresetNbhosting(t *testing.T) {
	t.Parallel()
	cli := requireEngine(t)
	ctx := t.Context()
	course := "nbhtest-pre-" + fjtest.Suffix()
	courseImage(t, cli, course)
	fjtest.CleanupContainers(t, cli, course+naming.Sep)
	cfg := defaultsConfig(t, course, "    container: {preset: nbhosting}\n")
	co := cfg.Courses[course]

	root := t.TempDir()
	dir := filepath.Join(root, "courses", course)
	for p, content := range map[string]string{
		"modules/nbhtest_hello.py": "GREETING = 'from modules'\n",
		"data/d.txt":               "course data\n",
		"lesson.ipynb":             "{}\n",
		// sample-course's way of asking for the default mappings.
		".nbhosting/nbhosting.yaml":                     "tracks: []\nstatic-mappings: []\n",
		".nbhosting/jupyter/custom/custom.css":          "body {}\n",
		".nbhosting/jupyter/jupyter_server_config.json": `{"ServerApp": {"tornado_settings": {"headers": {"X-Nbhtest-Layer": "course"}}}}` + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := containers.New(scoped{containers.NewDocker(cli), course + naming.Sep}, nil, slog.New(slog.NewTextHandler(t.Output(), nil)))
	m.Tokens = token.New(rootdir.TokenKey(root))
	sp, err := m.Spawn(ctx, co, "alice", containers.SpawnOptions{Root: root, UID: "1234"})
	if err != nil {
		t.Fatal(err)
	}

	checks := []struct{ cmd, want string }{
		{`python3 -c 'import nbhtest_hello; print(nbhtest_hello.GREETING)'`, "from modules"},
		{`cat /home/jovyan/static/data/d.txt`, "course data"},
		{`test -e /home/jovyan/static/media || echo no media`, "no media"},
		{`touch /home/jovyan/static/data/x 2>&1 || echo refused`, "refused"},
		{`touch /home/jovyan/modules/x 2>&1 || echo refused`, "refused"},
		{`echo "$NBAUTOEVAL_LOG"`, "/home/jovyan/work/.nbautoeval"},
		{`cat /home/jovyan/.jupyter/custom/custom.css`, "body {}"},
		{`echo x > /home/jovyan/.jupyter/custom/custom.css 2>&1 || echo refused`, "refused"},
		{`mkdir -p /home/jovyan/.jupyter/lab/workspaces && echo written`, "written"},
	}
	for _, c := range checks {
		if out := execAs(t, cli, sp.ID, "1234", "sh", "-c", c.cmd); !strings.Contains(out, c.want) {
			t.Errorf("as the student, %s: %q, want %q", c.cmd, out, c.want)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", sp.URL+"api/kernels?no_track_activity=1", nil)
	req.Header.Set("Authorization", "token "+sp.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Nbhtest-Layer") != "course" {
		t.Errorf("GET api/kernels: %s, X-Nbhtest-Layer %q; want 200 and the header the course's jupyter_server_config.json sets", resp.Status, resp.Header.Get("X-Nbhtest-Layer"))
	}
}
