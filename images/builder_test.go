package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/imageref"
)

func testSpec(image, key, df string) *Spec {
	return &Spec{Image: image, Key: key, File: "Dockerfile", Dockerfile: []byte(df), DockerfileName: "Dockerfile",
		Source: "repo@abc:", entries: []entry{{name: "Dockerfile", data: []byte(df)}}}
}

var (
	keyA = strings.Repeat("a", 64)
	keyB = strings.Repeat("b", 64)
)

func TestEnsureBuildsOnlyNewKeys(t *testing.T) {
	st, eng := newStore()
	b := NewBuilder(eng, Options{Concurrency: 2})
	ctx := t.Context()
	var log strings.Builder
	res, err := b.Ensure(ctx, testSpec("i", keyA, goodDockerfile), EnsureOptions{Log: &log})
	if err != nil || !res.Built {
		t.Fatalf("first Ensure: built %v, err %v", res.Built, err)
	}
	if !strings.Contains(log.String(), "Step 1/1") || !strings.Contains(res.Log, "smoke test passed") {
		t.Errorf("log not streamed/kept: %q", res.Log)
	}
	if st.tagged("i:latest") != res.ImageID || st.tagged("i:aaaaaaaaaaaa") != res.ImageID {
		t.Errorf("tags: latest %s key %s, want %s", st.tagged("i:latest"), st.tagged("i:aaaaaaaaaaaa"), res.ImageID)
	}
	res2, err := b.Ensure(ctx, testSpec("i", keyA, goodDockerfile), EnsureOptions{})
	if err != nil || res2.Built || res2.ImageID != res.ImageID {
		t.Fatalf("same key: built %v id %s err %v", res2.Built, res2.ImageID, err)
	}
	if n, _ := st.counts(); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	cur, err := b.Current(ctx, "i")
	if err != nil || cur.Key != keyA || cur.Smoke != "passed" || cur.ImageID != res.ImageID {
		t.Errorf("Current = %+v, %v", cur, err)
	}
	if _, err := b.Current(ctx, "nothing"); !errors.Is(err, ErrNoImage) {
		t.Errorf("Current of unbuilt image: %v", err)
	}

	// Forced: builds again without cache; latest moves to the new build.
	res3, err := b.Ensure(ctx, testSpec("i", keyA, goodDockerfile), EnsureOptions{Force: true})
	if err != nil || !res3.Built || res3.ImageID == res.ImageID {
		t.Fatalf("forced: %+v %v", res3, err)
	}
	if n, nc := st.counts(); n != 2 || nc != 1 {
		t.Errorf("builds %d nocache %d, want 2 1", n, nc)
	}
	if st.tagged("i:latest") != res3.ImageID || st.tagged("i:aaaaaaaaaaaa") != res3.ImageID || st.tagged("i:build-aaaaaaaaaaaa") != "" {
		t.Error("forced rebuild: tags not moved")
	}
}

// An image with the key label but only the scratch tag (a process killed
// before the smoke test passed) is not a build: Ensure builds again.
func TestEnsureIgnoresUncommitted(t *testing.T) {
	st, eng := newStore()
	st.add([]string{"i:build-aaaaaaaaaaaa"}, map[string]string{LabelImage: "i", LabelBuildKey: keyA})
	b := NewBuilder(eng, Options{})
	res, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
	if err != nil || !res.Built {
		t.Fatalf("built %v err %v", res.Built, err)
	}
	// And a passed build without I:latest (killed before that last tag)
	// gets it without a build.
	st2, eng2 := newStore()
	id := st2.add([]string{"i:aaaaaaaaaaaa"}, map[string]string{LabelImage: "i", LabelBuildKey: keyA})
	res, err = NewBuilder(eng2, Options{}).Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
	if err != nil || res.Built || st2.tagged("i:latest") != id {
		t.Fatalf("re-tag: built %v err %v latest %s", res.Built, err, st2.tagged("i:latest"))
	}
}

func TestEnsureFailures(t *testing.T) {
	for _, tc := range []struct {
		name, df, stage, inLog string
		mode                   FileStat
		statErr                error
	}{
		{name: "lint", df: "FROM scratch\n", stage: "lint", inLog: "must COPY"},
		{name: "build", df: goodDockerfile + "RUN FAIL\n", stage: "build", inLog: "FAIL: exit 1"},
		{name: "script not executable", df: goodDockerfile, stage: "smoke", inLog: "not executable", mode: FileStat{Mode: 0o644}},
		{name: "script missing", df: goodDockerfile, stage: "smoke", inLog: "missing", statErr: fmt.Errorf("stat: %w", ErrNotFound)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, eng := newStore()
			old := st.add([]string{"i:latest", "i:bbbbbbbbbbbb"}, map[string]string{LabelImage: "i", LabelBuildKey: keyB})
			if tc.mode.Mode != 0 {
				st.scriptMode = tc.mode
			}
			if tc.statErr != nil {
				eng.ContainerStatPathFn = func(context.Context, string, string) (FileStat, error) { return FileStat{}, tc.statErr }
			}
			b := NewBuilder(eng, Options{})
			_, err := b.Ensure(t.Context(), testSpec("i", keyA, tc.df), EnsureOptions{})
			var be *BuildError
			if !errors.As(err, &be) || string(be.Stage) != tc.stage || !strings.Contains(be.Log, tc.inLog) {
				t.Fatalf("err = %v (log %q), want stage %s with %q in log", err, logOf(be), tc.stage, tc.inLog)
			}
			if st.tagged("i:latest") != old {
				t.Error("I:latest moved after a failure")
			}
			if st.tagged("i:aaaaaaaaaaaa") != "" {
				t.Error("a failed build keeps its key tag")
			}
			if last, ok := b.Last("i"); !ok || last.Err == "" {
				t.Errorf("Last = %+v", last)
			}
		})
	}
}

func logOf(be *BuildError) string {
	if be == nil {
		return ""
	}
	return be.Log
}

func TestEnsureSmokeCommand(t *testing.T) {
	for _, code := range []int64{0, 3} {
		st, eng := newStore()
		var created ContainerConfig
		eng.ContainerCreateFn = func(_ context.Context, c ContainerConfig) (string, error) { created = c; return "c", nil }
		eng.ContainerStartFn = func(context.Context, string) error { return nil }
		eng.ContainerWaitFn = func(context.Context, string) (int64, error) { return code, nil }
		eng.ContainerLogsFn = func(context.Context, string) (string, error) { return "import ok?", nil }
		spec := testSpec("i", keyA, goodDockerfile)
		spec.Smoke = []string{"python3", "-c", "import numpy"}
		_, err := NewBuilder(eng, Options{}).Ensure(t.Context(), spec, EnsureOptions{})
		if (err == nil) != (code == 0) {
			t.Errorf("exit %d: err %v", code, err)
		}
		if created.Entrypoint[0] != "python3" || len(created.Cmd) != 2 {
			t.Errorf("smoke container %+v", created)
		}
		if got := st.tagged("i:latest") != ""; got != (code == 0) {
			t.Errorf("exit %d: latest tagged = %v", code, got)
		}
	}
}

// Many Ensure calls for one image (courses sharing it, a cron tick and a
// push at once) build once; different images build at most Concurrency
// at a time.
func TestEnsureConcurrency(t *testing.T) {
	st, eng := newStore()
	var running, peak atomic.Int32
	build := eng.ImageBuildFn
	eng.ImageBuildFn = func(ctx context.Context, r io.Reader, o BuildOptions) (io.ReadCloser, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond) // hold the slot so overlaps show
		return build(ctx, r, o)
	}
	b := NewBuilder(eng, Options{Concurrency: 2})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			image := fmt.Sprintf("img%d", i%4)
			if _, err := b.Ensure(t.Context(), testSpec(image, keyA, goodDockerfile), EnsureOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, _ := st.counts(); n != 4 {
		t.Errorf("%d builds for 4 images, want 4", n)
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d builds at once, want ≤ 2", p)
	}
}

func TestPinAndPrune(t *testing.T) {
	st, eng := newStore()
	b := NewBuilder(eng, Options{Keep: 2})
	ctx := t.Context()
	var ids []string
	for _, k := range []string{"1", "2", "3", "4"} {
		res, err := b.Ensure(ctx, testSpec("i", strings.Repeat(k, 64), goodDockerfile), EnsureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ImageID)
	}
	pinned := testSpec("i", strings.Repeat("4", 64), goodDockerfile)
	pinned.Pin = strings.Repeat("9", 12)
	if _, err := b.Ensure(ctx, pinned, EnsureOptions{}); err == nil || !strings.Contains(err.Error(), "no kept build") {
		t.Errorf("pin of an unknown key: %v", err)
	}
	if st.tagged("i:latest") != ids[3] {
		t.Error("a bad pin moved latest")
	}
	pinned.Pin = strings.Repeat("2", 12)
	res, err := b.Ensure(ctx, pinned, EnsureOptions{})
	if err != nil || !res.Pinned || st.tagged("i:latest") != ids[1] {
		t.Fatalf("pin: %+v %v", res, err)
	}
	if n, _ := st.counts(); n != 4 {
		t.Errorf("pin built: %d builds", n)
	}
	// Keep 2 (builds 4 and 3), plus latest (2, pinned) and in-use 1: nothing
	// goes; without 1 in use, 1 goes.
	removed, err := b.Prune(ctx, "i", map[string]bool{ids[0]: true})
	if err != nil || len(removed) != 0 {
		t.Errorf("prune with 1 in use: %v %v", removed, err)
	}
	removed, err = b.Prune(ctx, "i", nil)
	if err != nil || len(removed) != 1 || removed[0] != ids[0] {
		t.Errorf("prune: removed %v (want %s) %v", removed, ids[0], err)
	}
	builds, _ := b.Builds(ctx, "i")
	if len(builds) != 3 {
		t.Errorf("%d builds left, want 3", len(builds))
	}
}

// podman fails a build with "layer not known" when an image goes from its
// store while the build looks for a cached step, Docker with "unknown
// parent image ID" when a cached step's image went; the builder builds again,
// with the whole context each time, a bounded number of times, and never
// for any other failure.
func TestEnsureStoreRace(t *testing.T) {
	const race = "checking if cached image exists from a previous build: getting top layer info: layer not known"
	for _, tc := range []struct {
		name       string
		failures   int    // the first builds that fail
		msg        string // with this message
		wantCalls  int
		wantErr    bool
		wantRetold int // "building again" lines in the log
	}{
		{name: "once", failures: 1, msg: race, wantCalls: 2, wantRetold: 1},
		{name: "twice", failures: 2, msg: race, wantCalls: 3, wantRetold: 2},
		{name: "every time", failures: 9, msg: race, wantCalls: storeRaceAttempts, wantErr: true, wantRetold: storeRaceAttempts - 1},
		// What CI saw when a test removed its image (and the untagged
		// intermediates) while another built the same first steps.
		{name: "docker's cached parent removed", failures: 1, msg: "failed to export image: failed to set parent sha256:a56e7d69: unknown parent image ID sha256:a56e7d69", wantCalls: 2, wantRetold: 1},
		{name: "another failure", failures: 1, msg: "RUN pip install: exit 1", wantCalls: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, eng := newStore()
			build := eng.ImageBuildFn
			calls := 0
			eng.ImageBuildFn = func(ctx context.Context, r io.Reader, o BuildOptions) (io.ReadCloser, error) {
				calls++
				if calls <= tc.failures {
					if n, _ := io.Copy(io.Discard, r); n == 0 {
						t.Error("a build with an empty context")
					}
					return io.NopCloser(strings.NewReader(`{"stream":"STEP 1/2: FROM base\n"}` + "\n" + `{"error":"` + tc.msg + `"}` + "\n")), nil
				}
				return build(ctx, r, o)
			}
			var log strings.Builder
			res, err := NewBuilder(eng, Options{}).Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{Log: &log})
			if calls != tc.wantCalls || (err != nil) != tc.wantErr {
				t.Fatalf("%d builds, err %v; want %d builds, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
			if n := strings.Count(log.String(), "building again"); n != tc.wantRetold {
				t.Errorf("log tells of %d retries, want %d:\n%s", n, tc.wantRetold, log.String())
			}
			if !tc.wantErr && (res.ImageID == "" || st.tagged("i:latest") != res.ImageID) {
				t.Errorf("after the retry: %+v, latest %s", res, st.tagged("i:latest"))
			}
		})
	}
}

// A smoke-test container that a killed process left is removed at the
// image's next build and at its prune, found by its label: the site's
// repository of the image, so another site's (or another image's) stays.
func TestSmokeLeftoversSwept(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(b *Builder) error
	}{
		{"build", func(b *Builder) error {
			_, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
			return err
		}},
		{"prune", func(b *Builder) error {
			_, err := b.Prune(t.Context(), "i", nil)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, eng := newStore()
			const site = "/srv/a"
			repo := imageref.Repository(site, "i")
			containers := map[string]string{ // ID → its LabelSmokeOf
				"left": repo, "other-site": imageref.Repository("/srv/b", "i"), "other-image": imageref.Repository(site, "j"),
			}
			var mu sync.Mutex
			var created ContainerConfig
			lists := 0
			eng.ContainerListFn = func(_ context.Context, labels ...string) ([]string, error) {
				mu.Lock()
				defer mu.Unlock()
				lists++
				var ids []string
				for id, of := range containers {
					if slices.Equal(labels, []string{imageref.LabelSmokeOf + "=" + of}) {
						ids = append(ids, id)
					}
				}
				return ids, nil
			}
			eng.ContainerCreateFn = func(_ context.Context, c ContainerConfig) (string, error) { created = c; return "new", nil }
			eng.ContainerRemoveFn = func(_ context.Context, id string) error {
				mu.Lock()
				defer mu.Unlock()
				delete(containers, id)
				return nil
			}
			b := NewBuilder(eng, Options{Site: site})
			if err := tc.run(b); err != nil {
				t.Fatal(err)
			}
			// Passes prune every image: only a process's first looks.
			before := lists
			if _, err := b.Prune(t.Context(), "i", nil); err != nil {
				t.Fatal(err)
			}
			if tc.name == "prune" && lists != before {
				t.Errorf("a second prune listed containers again (%d lists, then %d)", before, lists)
			}
			if _, ok := containers["left"]; ok {
				t.Error("the leftover smoke-test container is still there")
			}
			if len(containers) != 2 {
				t.Errorf("containers left: %v, want the other site's and the other image's", containers)
			}
			if tc.name == "build" && created.Labels[imageref.LabelSmokeOf] != repo {
				t.Errorf("the new smoke-test container's labels: %v", created.Labels)
			}
		})
	}
}
