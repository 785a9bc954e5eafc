//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// killRounds is how many times TestKillRestart kills the daemon.
const killRounds = 24

// TestKillRestart kills the daemon with SIGKILL at random moments of
// builds, passes and spawns, again and again, and restarts it each time on
// the same root. Between kills nothing may be broken (no student with two
// containers, :latest always on a build that passed its smoke test, busy
// students never touched, no student file lost); at the end the site
// converges: the last push built, stale idle containers retired, no smoke
// container or unsmoked build left, every student spawnable.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	s := newFakeSite(t)
	tm := newTimings(t)
	ctx := t.Context()
	idle, busy := s.prefix+"-k1", s.prefix+"-k2"
	r := s.imageRepo("k1", "v0", idleKernels)
	r2 := s.git.newRepo(t, "k2", map[string]string{"intro.md": "# k2\n"})
	d, _ := s.start(
		fakeCourse{name: idle, repo: r.url},
		fakeCourse{name: busy, repo: r2.url, image: idle},
	)
	d.waitReady(3 * time.Minute)
	idlers := []string{"ann", "ben", "cat", "dan"}
	workers := []string{"wes", "wil"}
	busyIDs := map[string]string{}
	for _, w := range workers {
		sp := d.mustSpawn(busy, w, nil)
		setKernels(t, sp, "tok-"+w, busyKernels)
		busyIDs[w] = containerID(t, s.cli, busy+"-x-"+w)
	}
	for _, st := range idlers {
		d.mustSpawn(idle, st, nil)
	}
	files := map[string]string{}
	write := func(student, course, name, text string) {
		p := filepath.Join(d.root, "students", student, course, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files[p] = text
	}
	for _, st := range idlers {
		write(st, idle, "notes.txt", st+" was here")
	}
	for _, w := range workers {
		write(w, busy, "notes.txt", w+" works")
	}
	tm.phase("site up: 4 idle students, 2 busy ones")

	phases := map[string]int{}
	var last string
	for round := range killRounds {
		if round%3 != 0 { // a new image version two rounds in three
			last = r.Commit(t, map[string]string{"docker-image/marker.txt": fmt.Sprintf("v%d\n", round+1)}, fmt.Sprintf("v%d", round+1))
		}
		if !d.Alive() {
			d.start()
		}
		mark := d.Mark()
		// Students keep coming, through the kills.
		sctx, stopSpawns := context.WithCancel(ctx)
		go func() {
			for sctx.Err() == nil {
				_, _ = d.spawn(sctx, idle, idlers[rand.IntN(len(idlers))], nil)
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			}
		}()
		// When to kill: at random, or just after a checkout (the build
		// follows), or just after a container action or a creation.
		wctx, cancel := context.WithTimeout(ctx, 6*time.Second)
		switch round % 3 {
		case 0:
			sleep(wctx, time.Duration(rand.IntN(2500))*time.Millisecond)
		case 1:
			_, _ = d.NextLog(wctx, mark, func(l logLine) bool { return l.Msg == "course checked out" })
			sleep(wctx, time.Duration(rand.IntN(1500))*time.Millisecond)
		case 2:
			_, _ = d.NextLog(wctx, mark, func(l logLine) bool {
				return l.Msg == "container action" || l.Msg == "created container" || l.Msg == "built"
			})
			sleep(wctx, time.Duration(rand.IntN(200))*time.Millisecond)
		}
		cancel()
		d.Kill()
		stopSpawns()
		phases[phaseAt(d.Lines(mark))]++
		checkInvariants(t, s, idle, d.repo(idle), busy, busyIDs, files)
	}
	t.Logf("%d kills, by what the daemon was doing: %v", killRounds, phases)
	tm.phase(fmt.Sprintf("%d SIGKILLs and restarts", killRounds))

	// The last start: it converges.
	d.start()
	d.waitReady(2 * time.Minute)
	testenv.Eventually(t, 3*time.Minute, "converged after the last restart", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		im := imageView(st, idle)
		c, _ := course(st, idle)
		return len(st.Errors) == 0 && strings.Contains(im.Source, last[:12]) && c.Stale == 0,
			fmt.Sprintf("image %+v, course %+v, errors %v", im, c, st.Errors)
	})
	// One more full pass, so that its prune has run on the final state.
	mark := d.Mark()
	d.sync()
	if _, err := d.NextLog(ctx, mark, func(l logLine) bool { return strings.HasPrefix(l.Msg, "pass finished") }); err != nil {
		t.Fatal(err)
	}
	tm.phase("last restart -> converged")
	checkInvariants(t, s, idle, d.repo(idle), busy, busyIDs, files)
	checkEngineClean(t, s, idle, d.repo(idle))
	for _, st := range idlers {
		if _, err := d.spawn(ctx, idle, st, nil); err != nil {
			t.Errorf("spawn %s after the kills: %v", st, err)
		}
	}
	cs := managed(t, s, idle)
	cur, err := s.cli.ImageInspect(ctx, d.repo(idle)+":latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ImageID != cur.ID && c.Labels["org.nbhosting.course"] == idle {
			t.Errorf("%v runs %s, not the current image %s", c.Names, c.ImageID, cur.ID)
		}
	}
	tm.phase("every student spawned again")
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// phaseAt names what the daemon was doing when it was killed, from its
// log of that run: building (a checkout not yet followed by a build
// result), in a pass, or between passes.
func phaseAt(lines []logLine) string {
	state := "starting"
	for _, l := range lines {
		switch l.Msg {
		case "course checked out":
			state = "build"
		case "built", "build failed":
			state = "pass"
		case "pass":
			if state != "build" {
				state = "pass"
			}
		case "container action", "created container":
			state = "pass/spawn actions"
		case "pass finished", "pass finished with errors":
			state = "between passes"
		}
	}
	return state
}

// managed lists the containers of course (by label).
func managed(t *testing.T, s *fakeSite, course string) []container.Summary {
	t.Helper()
	cs, err := s.cli.ContainerList(context.WithoutCancel(t.Context()), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "org.nbhosting.course="+course))})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// checkInvariants checks what must hold at any moment, even right after a
// SIGKILL.
func checkInvariants(t *testing.T, s *fakeSite, idle, idleRepo, busy string, busyIDs, files map[string]string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	for _, course := range []string{idle, busy} {
		per := map[string][]string{}
		for _, c := range managed(t, s, course) {
			st := c.Labels["org.nbhosting.student"]
			per[st] = append(per[st], c.Names...)
		}
		for st, names := range per {
			if len(names) > 1 {
				t.Errorf("student %s of %s has %d containers: %v", st, course, len(names), names)
			}
		}
	}
	if im, err := s.cli.ImageInspect(ctx, idleRepo+":latest"); err == nil && (im.Config == nil || !images.Passed(idleRepo, im.RepoTags, im.Config.Labels[images.LabelBuildKey])) {
		t.Errorf("%s:latest points at %s, a build that did not pass its smoke test", idle, im.ID)
	}
	for w, id := range busyIDs {
		info, err := s.cli.ContainerInspect(ctx, busy+"-x-"+w)
		if err != nil || info.ID != id || info.State == nil || !info.State.Running {
			t.Fatalf("busy student %s's container was touched: %v", w, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if b, err := os.ReadFile(p); err != nil || string(b) != files[p] {
			t.Fatalf("student file %s: %q, %v", p, b, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
