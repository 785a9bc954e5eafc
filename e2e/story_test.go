//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// jupyterDockerfile is a course image on the real Jupyter server; marker
// makes each version's build key (and image) differ.
const jupyterDockerfile = `FROM nbhtest-jupyter:latest
COPY start-in-dir-as-uid.sh /usr/local/bin/
COPY marker.txt /etc/nbh-marker.txt
`

// storyConfig is the courses.yaml of the story: the real server started
// as the student's uid in /home/jovyan, under /{port}/, with a token the
// activity probe sends. courses maps a course to its repo; a course with
// image set uses that image.
func storyConfig(courses map[string]string, image map[string]string) string {
	var b strings.Builder
	b.WriteString(`version: 1
defaults:
  idle: 2m
  container:
    token: "tok-{student}-{port}"
    command: [start-in-dir-as-uid.sh, /home/jovyan, "{uid}", jupyter, server, --ip=0.0.0.0, --port=8888,
              --no-browser, "--ServerApp.base_url=/{port}/", "--ServerApp.token=tok-{student}-{port}"]
schedules:
  pull: "@every 10m"     # pushes come by webhook
  reconcile: "@every 3s" # container passes
courses:
`)
	for _, name := range slices.Sorted(maps.Keys(courses)) {
		fmt.Fprintf(&b, "  %s:\n    repo: %s\n", name, courses[name])
		if im := image[name]; im != "" {
			fmt.Fprintf(&b, "    image: %s\n", im)
		}
	}
	return b.String()
}

// timings records how long each phase of a test took, for the report.
type timings struct {
	t     *testing.T
	start time.Time
	last  time.Time
	lines []string
}

func newTimings(t *testing.T) *timings {
	now := time.Now()
	tm := &timings{t: t, start: now, last: now}
	t.Cleanup(func() {
		t.Logf("timings of %s (total %s):\n  %s", t.Name(), time.Since(tm.start).Round(100*time.Millisecond), strings.Join(tm.lines, "\n  "))
	})
	return tm
}

func (tm *timings) phase(name string) {
	now := time.Now()
	tm.lines = append(tm.lines, fmt.Sprintf("%-58s %7s", name, now.Sub(tm.last).Round(100*time.Millisecond)))
	tm.last = now
}

// TestStory is the whole life of a course site against the real engine
// and the real Jupyter server: the daemon builds two course images from
// repos served over HTTP; four students spawn through the API and work
// (files, kernels; two keep a kernel busy); an instructor push rebuilds
// one image; an admin removes the other course; the idle students are
// rolled onto the new image or retired, the active one is left alone and
// reported stale, and nobody's files are lost.
func TestStory(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	requireJupyter(t, cli)
	prefix := "nbhtest-e2e-" + fjtest.Suffix()
	cleanupEngine(t, cli, prefix)
	tm := newTimings(t)
	ctx := t.Context()

	// Two courses, one image: py's repo defines it (docker-image/), gone
	// uses it. (Builds on the 288 MB Jupyter image are slow on
	// fuse-overlayfs: one is enough.)
	py, gone := prefix+"-py", prefix+"-gone"
	git := newGitServer(t)
	pyRepo := git.newRepo(t, "py", map[string]string{
		"docker-image/nbhosting.Dockerfile": jupyterDockerfile,
		"docker-image/marker.txt":           "py v1\n",
		"notebooks/intro.md":                "# Intro\n",
	})
	goneRepo := git.newRepo(t, "gone", map[string]string{"notebooks/old.md": "# Old\n"})
	shared := map[string]string{gone: py}
	cfgRepo := git.newRepo(t, "config", map[string]string{
		"courses.yaml": storyConfig(map[string]string{py: pyRepo.url, gone: goneRepo.url}, shared),
	})
	proxy := newEngineProxy(t, prefix)
	d := newDaemon(t, cfgRepo.url, proxy.host())
	tm.phase("setup: repos over HTTP, engine proxy")

	d.start()
	d.waitReady(12 * time.Minute) // the first pass builds the course image
	st := d.mustStatus()
	key1 := imageView(st, py).BuildKey
	if key1 == "" {
		t.Fatalf("image not built after the first pass: %+v\nerrors: %v", st.Images, st.Errors)
	}
	if len(st.Errors) > 0 {
		t.Fatalf("errors after the first pass: %v", st.Errors)
	}
	tm.phase("daemon start, first pass: pull, Jupyter image build")

	// Four students show up at once.
	uid := 1000
	type who struct{ course, name string }
	cohort := []who{{py, "alice"}, {py, "bob"}, {gone, "carol"}, {gone, "dave"}}
	// Each student starts work as soon as their server is handed out, as
	// a student does: on a busy machine the four spawns take minutes, and
	// a server handed out and left alone for the course's idle time (2m)
	// is stopped.
	spawned := make([]struct {
		res    api.SpawnResult
		server *jupytertest.Server
		kernel string
		err    error
	}, len(cohort))
	var wg sync.WaitGroup
	for i, s := range cohort {
		wg.Go(func() {
			r := &spawned[i]
			if r.res, r.err = d.spawn(ctx, s.course, s.name, &uid); r.err != nil {
				return
			}
			if r.server, r.err = jupytertest.Dial(r.res.URL, fmt.Sprintf("tok-%s-%d", s.name, r.res.Port)); r.err != nil {
				return
			}
			if r.err = putFile(ctx, r.server, "work/"+s.name+".txt", s.name+"'s notes\n"); r.err != nil {
				r.err = fmt.Errorf("saves a file: %w", r.err)
				return
			}
			if s.name != "carol" { // carol only saves a file
				if r.kernel, r.err = settledKernel(ctx, r.server); r.err != nil {
					r.err = fmt.Errorf("opens a notebook: %w\nthe server's log:\n%s", r.err, containerLog(cli, s.course+"-x-"+s.name))
				}
			}
		})
	}
	wg.Wait()
	ids := map[string]string{}
	students := map[string]*jupytertest.Server{}
	busy := map[string]string{}
	for i, s := range cohort {
		r := spawned[i]
		if r.err != nil || r.res.State != "created" {
			t.Fatalf("spawn %s/%s: state %q, err %v", s.course, s.name, r.res.State, r.err)
		}
		students[s.name] = r.server
		if r.kernel != "" {
			busy[s.name] = r.kernel
		}
		ids[s.name] = containerID(t, cli, s.course+"-x-"+s.name)
	}
	tm.phase("4 concurrent spawns through POST /api/spawn (real servers), each student saves a file and opens a notebook")

	// They work: cells in kernels; alice and dave leave a long
	// computation running.
	out, err := students["bob"].Execute(ctx, busy["bob"], "open('/home/jovyan/work/from-kernel.txt', 'w').write('written as uid %d' % __import__('os').getuid()); print('ok')")
	if err != nil || out != "ok\n" {
		t.Fatalf("bob runs a cell: %q, %v", out, err)
	}
	if b, err := os.ReadFile(filepath.Join(d.root, "students", "bob", py, "from-kernel.txt")); err != nil || string(b) != "written as uid 1000" {
		t.Fatalf("bob's kernel output on the host: %q, %v", b, err)
	}
	for _, name := range []string{"alice", "dave"} {
		if err := startBusy(ctx, students[name], busy[name]); err != nil {
			t.Fatalf("%s starts a long computation: %v", name, err)
		}
	}
	tm.phase("activity through the Jupyter REST API and kernel websockets")

	// carol comes back to her notebook (her launch link again): on a
	// starved machine the other spawns took longer than her idle time.
	// Her server, stopped meanwhile or not, is the same one.
	if res, err := d.spawn(ctx, gone, "carol", &uid); err != nil || containerID(t, cli, gone+"-x-carol") != ids["carol"] {
		t.Fatalf("carol comes back: %+v, %v; want her server %.12s", res, err, ids["carol"])
	}

	// The admin removes the course "gone": its containers stay while in
	// use.
	cfgRev := cfgRepo.Commit(t, map[string]string{"courses.yaml": storyConfig(map[string]string{py: pyRepo.url}, shared)}, "drop "+gone)
	mark := d.Mark()
	d.sync()
	testenv.Eventually(t, time.Minute, "config revision without "+gone+" applied", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		_, still := course(st, gone)
		return st.Revision == cfgRev && !still, "revision " + st.Revision
	})
	for range 2 { // the pass that applied it and a scheduled one
		if _, err := d.NextLog(ctx, mark, func(l logLine) bool { return strings.HasPrefix(l.Msg, "pass finished") }); err != nil {
			t.Fatal(err)
		}
		mark = d.Mark()
	}
	requireRunning(t, cli, gone+"-x-dave", ids["dave"], "dave is busy in a removed course")
	requireRunning(t, cli, gone+"-x-carol", ids["carol"], "carol came back less than 2m ago")
	// dave's computation ends: his server is idle from now on.
	if err := students["dave"].InterruptKernel(ctx, busy["dave"]); err != nil {
		t.Fatal(err)
	}
	daveIdle := time.Now()
	tm.phase("admin removes a course (config push + POST /api/sync)")

	// The instructor pushes a new image definition; the forge's webhook
	// tells the daemon.
	pyRepo.Commit(t, map[string]string{"docker-image/marker.txt": "py v2\n"}, "image: v2")
	if res := d.hook(pyRepo.url); len(res.Courses) != 1 || res.Courses[0] != py {
		t.Fatalf("webhook triggered courses %v, want [%s]", res.Courses, py)
	}
	var key2 string
	testenv.Eventually(t, 4*time.Minute, "the image rebuilt after the push", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		key2 = imageView(st, py).BuildKey
		return key2 != "" && key2 != key1, fmt.Sprintf("key %.12s, errors %v", key2, st.Errors)
	})
	tm.phase("instructor push + webhook -> image rebuilt")

	// The cohort goes idle: bob (stale) and carol, dave (removed course)
	// are retired once idle for 2m; alice, busy, is never touched.
	testenv.Eventually(t, 5*time.Minute, "idle students retired", func() (bool, string) {
		requireRunning(t, cli, py+"-x-alice", ids["alice"], "alice is busy")
		var left []string
		for _, name := range []string{py + "-x-bob", gone + "-x-carol", gone + "-x-dave"} {
			if _, err := cli.ContainerInspect(ctx, name); err == nil {
				left = append(left, name)
			}
		}
		return len(left) == 0, fmt.Sprintf("still there: %v", left)
	})
	if since := time.Since(daveIdle); since < 2*time.Minute {
		t.Errorf("dave's container removed %s after his kernel went idle, before idle (2m)", since)
	}
	testenv.Eventually(t, 30*time.Second, "alice reported stale", func() (bool, string) {
		st := d.mustStatus()
		c, _ := course(st, py)
		return c.Containers == 1 && c.Stale == 1 && c.Running == 1, fmt.Sprintf("%+v", c)
	})
	tm.phase("idle (2m) -> 3 containers retired, busy one kept, stale")

	// What the site says about it.
	st = d.mustStatus()
	retired := map[string]string{}
	for _, a := range st.Actions {
		if a.Kind == "remove" {
			retired[a.Student] = a.Reason
		}
	}
	for _, name := range []string{"bob", "carol", "dave"} {
		if retired[name] == "" {
			t.Errorf("no remove action for %s in status: %+v", name, st.Actions)
		}
	}
	t.Logf("reasons: bob: %s; carol: %s; dave: %s", retired["bob"], retired["carol"], retired["dave"])
	if _, err := d.spawn(ctx, gone, "carol", &uid); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("spawn in a removed course: %v, want 404", err)
	}

	// Nobody's files were lost.
	for _, f := range []string{"bob/" + py + "/bob.txt", "bob/" + py + "/from-kernel.txt", "carol/" + gone + "/carol.txt", "dave/" + gone + "/dave.txt", "alice/" + py + "/alice.txt"} {
		if _, err := os.Stat(filepath.Join(d.root, "students", f)); err != nil {
			t.Errorf("student file lost: %v", err)
		}
	}

	// bob comes back: a new container on the new image, his files there.
	res := d.mustSpawn(py, "bob", &uid)
	if res.State != "created" {
		t.Errorf("bob's respawn: state %s, want created", res.State)
	}
	bob := dialStudent(t, res.URL, fmt.Sprintf("tok-bob-%d", res.Port))
	if text, err := getFile(ctx, bob, "work/bob.txt"); err != nil || text != "bob's notes\n" {
		t.Errorf("bob's file after the roll-out: %q, %v", text, err)
	}
	k, err := bob.CreateKernel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := bob.Execute(ctx, k.ID, "print(open('/etc/nbh-marker.txt').read(), end='')"); err != nil || out != "py v2\n" {
		t.Errorf("bob's new container runs image marker %q (%v), want the v2 image", out, err)
	}
	if again := d.mustSpawn(py, "alice", &uid); again.State != "existing" {
		t.Errorf("alice's spawn: %s, want existing (her stale container kept as is)", again.State)
	}
	requireRunning(t, cli, py+"-x-alice", ids["alice"], "alice is still busy")
	if st, err := kernelState(ctx, students["alice"], busy["alice"]); err != nil || st != "busy" {
		t.Errorf("alice's kernel: %q, %v; want still busy", st, err)
	}
	tm.phase("bob respawned on the new image with his files; alice untouched")
	t.Logf("engine API calls through the proxy: %d", proxy.requests())
}

// containerID returns the ID of the container name.
func containerID(t *testing.T, cli *client.Client, name string) string {
	t.Helper()
	info, err := cli.ContainerInspect(t.Context(), name)
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return info.ID
}

// requireRunning fails the test at once unless container name is the one
// with id, running.
func requireRunning(t *testing.T, cli *client.Client, name, id, why string) {
	t.Helper()
	info, err := cli.ContainerInspect(context.WithoutCancel(t.Context()), name)
	switch {
	case errdefs.IsNotFound(err):
		t.Fatalf("%s was removed, but %s", name, why)
	case err != nil:
		t.Fatalf("inspect %s: %v", name, err)
	case info.ID != id:
		t.Fatalf("%s was recreated (%.12s, was %.12s), but %s", name, info.ID, id, why)
	case info.State == nil || !info.State.Running:
		t.Fatalf("%s was stopped (state %+v), but %s\nits log:\n%s", name, info.State, why, containerLog(cli, name))
	}
}

// containerLog returns the tail of a container's output, for failures.
func containerLog(cli *client.Client, name string) string {
	rc, err := cli.ContainerLogs(context.Background(), name, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var b strings.Builder
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	return b.String()
}
