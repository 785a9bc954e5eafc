//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestEngineOutage cuts the daemon off the engine in the middle of a pass
// that builds a new image, keeps it cut for several passes, and restores
// it: the daemon reports the errors, does not crash, and converges.
func TestEngineOutage(t *testing.T) {
	t.Parallel()
	s := newFakeSite(t)
	tm := newTimings(t)
	ctx := t.Context()
	name := s.prefix + "-eng"
	r := s.imageRepo("eng", "v1", idleKernels)
	d, proxy := s.start(fakeCourse{name: name, repo: r.url})
	d.waitReady(3 * time.Minute)
	key1 := imageView(d.mustStatus(), name).BuildKey
	if key1 == "" {
		t.Fatalf("not built: %+v", d.mustStatus())
	}
	d.mustSpawn(name, "ann", nil)
	notes := filepath.Join(d.root, "students", "ann", name, "notes.txt")
	if err := os.WriteFile(notes, []byte("ann's work"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm.phase("site up, ann spawned")

	// A push; the engine goes away as soon as the pass checks it out,
	// while the new image builds.
	mark := d.Mark()
	commit := r.Commit(t, map[string]string{"docker-image/marker.txt": "v2\n"}, "v2")
	if _, err := d.NextLog(ctx, mark, func(l logLine) bool { return l.Msg == "course checked out" }); err != nil {
		t.Fatal(err)
	}
	proxy.cut()
	cutAt := d.Mark()
	for range 3 { // three passes fail, the daemon lives on
		l, err := d.NextLog(ctx, cutAt, func(l logLine) bool { return l.Msg == "pass finished with errors" })
		if err != nil {
			t.Fatal(err)
		}
		cutAt = d.Mark()
		t.Logf("pass during the outage: %.300s", l.Raw)
	}
	if !d.Alive() {
		t.Fatal("the daemon died with the engine")
	}
	if err := d.call(ctx, http.MethodGet, "/healthz", nil, nil); err != nil {
		t.Errorf("healthz during the outage: %v", err)
	}
	st := d.mustStatus()
	if !strings.Contains(strings.Join(st.Errors, "\n"), "engine") {
		t.Errorf("status during the outage says nothing of the engine: %v", st.Errors)
	}
	t.Logf("status errors during the outage: %.400s", strings.Join(st.Errors, " | "))
	tm.phase("outage: 3 failed passes, daemon alive, errors reported")

	proxy.restore(t)
	testenv.Eventually(t, 2*time.Minute, "converged after the engine came back", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		im := imageView(st, name)
		c, _ := course(st, name)
		return len(st.Errors) == 0 && strings.Contains(im.Source, commit[:12]) && c.Stale == 0,
			fmt.Sprintf("image %+v, course %+v, errors %v", im, c, st.Errors)
	})
	tm.phase("engine restored -> converged (v2 built, ann's stale container retired)")
	res := d.mustSpawn(name, "ann", nil)
	if res.State != "created" {
		t.Errorf("ann's spawn after the roll-out: %s, want created", res.State)
	}
	if b, err := os.ReadFile(notes); err != nil || string(b) != "ann's work" {
		t.Errorf("ann's file: %q, %v", b, err)
	}
	checkEngineClean(t, s, name, d.repo(name))
}

// TestBadRemotes runs a site where one course's forge hangs (accepts,
// never answers) and another's fails (HTTP 500): the good course still
// builds and follows pushes, the bad ones show their errors and backoff
// in status, and a webhook brings a repaired remote back at once.
func TestBadRemotes(t *testing.T) {
	t.Parallel()
	s := newFakeSite(t)
	tm := newTimings(t)
	ctx := t.Context()
	good, hung, failing := s.prefix+"-good", s.prefix+"-hung", s.prefix+"-failing"
	goodRepo := s.imageRepo("good", "v1", "")
	hungRepo := s.git.newRepo(t, "hung", map[string]string{"intro.md": "# hung\n"})
	failRepo := s.git.newRepo(t, "failing", map[string]string{"intro.md": "# failing\n"})
	s.git.set("hung.git", hang)
	s.git.set("failing.git", fail)
	d, _ := s.start(
		fakeCourse{name: good, repo: goodRepo.url},
		fakeCourse{name: hung, repo: hungRepo.url, image: good},
		fakeCourse{name: failing, repo: failRepo.url, image: good},
	)
	d.waitReady(4 * time.Minute)
	st := d.mustStatus()
	if imageView(st, good).BuildKey == "" {
		t.Fatalf("the good course's image not built: %+v", st)
	}
	tm.phase("first pass (waits for the hung remote's git timeout)")
	if _, err := d.spawn(ctx, hung, "hal", nil); err != nil {
		t.Errorf("spawn in the course whose remote hangs (its image is fine): %v", err)
	}

	testenv.Eventually(t, time.Minute, "errors and backoff of the bad remotes in status", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		h, _ := course(st, hung)
		f, _ := course(st, failing)
		all := strings.Join(st.Errors, "\n")
		return h.Error != "" && strings.Contains(f.Error, "backing off") && strings.Contains(all, "backing off") && strings.Contains(all, hung),
			fmt.Sprintf("hung: %q; failing: %q", h.Error, f.Error)
	})
	st = d.mustStatus()
	h, _ := course(st, hung)
	f, _ := course(st, failing)
	t.Logf("status of the hung course: %.300s", h.Error)
	t.Logf("status of the failing course: %.300s", f.Error)
	tm.phase("errors and backoff visible in /api/status")

	// The instructor of the good course pushes: it still gets built.
	commit := goodRepo.Commit(t, map[string]string{"docker-image/marker.txt": "v2\n"}, "v2")
	d.hook(goodRepo.url)
	waited := testenv.Eventually(t, 4*time.Minute, "the good course built after its push", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		im := imageView(st, good)
		return strings.Contains(im.Source, commit[:12]), im.Source
	})
	t.Logf("push to the good course built %s after the push (the hung remote's timeout can hold a pass)", waited.Round(100*time.Millisecond))
	tm.phase("push to the good course -> built despite the others")

	// The failing forge is repaired; its webhook ends the backoff at once.
	s.git.set("failing.git", serve)
	fc := failRepo.Commit(t, map[string]string{"intro.md": "# repaired\n"}, "repaired")
	d.hook(failRepo.url)
	testenv.Eventually(t, 2*time.Minute, "the repaired course synced", func() (bool, string) {
		st, err := d.status(ctx)
		if err != nil {
			return false, err.Error()
		}
		c, _ := course(st, failing)
		return c.Commit == fc && c.Error == "", fmt.Sprintf("%+v", c)
	})
	tm.phase("failing remote repaired + webhook -> synced")
	if !d.Alive() {
		t.Fatal("daemon died")
	}
	t.Logf("requests to the hung remote: %d, to the failing one: %d", s.git.requests("hung.git"), s.git.requests("failing.git"))
}

// checkEngineClean checks what a converged site leaves on the engine for
// image: no smoke-test container, :latest on a build that passed its smoke
// test, and no build whose smoke test never passed.
// checkEngineClean checks the engine after imageName was built in repo:
// no smoke container left, repo:latest and every served tag passed.
func checkEngineClean(t *testing.T, s *fakeSite, imageName, repo string) {
	t.Helper()
	ctx := t.Context()
	cs, err := s.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", imageName+"-smoke-"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Errorf("smoke-test container left behind: %v (%s)", c.Names, c.State)
	}
	latest, err := s.cli.ImageInspect(ctx, repo+":latest")
	if err != nil {
		t.Fatalf("%s:latest: %v", imageName, err)
	}
	if latest.Config == nil || !images.Passed(repo, latest.RepoTags, latest.Config.Labels[images.LabelBuildKey]) {
		t.Errorf("%s:latest is not a build that passed its smoke test", imageName)
	}
	ims, err := s.cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "org.nbhosting.image="+imageName))})
	if err != nil {
		t.Fatal(err)
	}
	// An unsmoked build may stay as the (untagged) parent of the build
	// that passed; one with a tag is a leftover of an interrupted build
	// that prune missed.
	for _, im := range ims {
		if testenv.Served(repo, im.RepoTags) && !images.Passed(repo, im.RepoTags, im.Labels[images.LabelBuildKey]) {
			t.Errorf("unsmoked build still tagged: %s %v", im.ID, im.RepoTags)
		}
	}
}
