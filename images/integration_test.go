package images

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// courseSite is a site with one course whose image is built from its
// docker-image/ folder, FROM the test base image.
func courseSite(t *testing.T, eng *DockerEngine) (s *site, name, yaml, base string) {
	base = baseImage(t, eng)
	name = testName(t, "c")
	cleanupImage(t, eng, name)
	s = newSite()
	s.courses[name] = map[string]file{
		"docker-image/nbhosting.Dockerfile": {data: "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY data.txt /data.txt\n"},
		"docker-image/data.txt":             {data: "v1\n"},
		"notebooks/a.ipynb":                 {data: "{}"},
	}
	yaml = fmt.Sprintf("version: 1\ncourses:\n  %s:\n    repo: https://example.org/c.git\n", name)
	return s, name, yaml, base
}

func ensure(t *testing.T, b *Builder, s *site, yaml, image string, opts EnsureOptions) (Result, error) {
	t.Helper()
	spec, err := NewSpec(parseConfig(t, yaml), image, s.trees(t))
	if err != nil {
		t.Fatal(err)
	}
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	return b.Ensure(t.Context(), spec, opts)
}

func mustEnsure(t *testing.T, b *Builder, s *site, yaml, image string) Result {
	t.Helper()
	res, err := ensure(t, b, s, yaml, image, EnsureOptions{})
	if err != nil {
		t.Fatalf("Ensure %s: %v", image, err)
	}
	return res
}

func TestIntegrationBuildsExactlyOnChange(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	s, name, yaml, _ := courseSite(t, eng)
	b := NewBuilder(eng, Options{Concurrency: 2})

	first := mustEnsure(t, b, s, yaml, name)
	if !first.Built {
		t.Fatal("first Ensure did not build")
	}
	cur, err := b.Current(t.Context(), name)
	if err != nil || cur.Key != first.Key || cur.Smoke != "passed" || cur.ImageID != first.ImageID || !strings.HasPrefix(cur.Source, "file:///"+name+"@") {
		t.Fatalf("Current = %+v, %v", cur, err)
	}
	if !contains(cur.Tags, name+":latest") || !contains(cur.Tags, name+":"+first.Key[:12]) {
		t.Errorf("tags %v", cur.Tags)
	}

	t.Run("notebook-only commit builds nothing", func(t *testing.T) {
		s.courses[name]["notebooks/a.ipynb"] = file{data: `{"cells":[]}`}
		s.courses[name]["notebooks/b.ipynb"] = file{data: "{}"}
		res := mustEnsure(t, b, s, yaml, name)
		if res.Built || res.Key != first.Key || res.ImageID != first.ImageID {
			t.Errorf("built %v key %s", res.Built, res.Key)
		}
	})
	t.Run("docker-image change builds once", func(t *testing.T) {
		s.courses[name]["docker-image/data.txt"] = file{data: "v2\n"}
		res := mustEnsure(t, b, s, yaml, name)
		again := mustEnsure(t, b, s, yaml, name)
		if !res.Built || again.Built || res.Key == first.Key {
			t.Fatalf("built %v then %v", res.Built, again.Built)
		}
		if code, out := run(t, eng, name+":latest", ContainerConfig{Entrypoint: []string{"/bin/tool", "cat", "/data.txt"}}); code != 0 || out != "v2\n" {
			t.Errorf("latest serves %q (exit %d), want v2", out, code)
		}
	})
}

func TestIntegrationAdminDockerfileSharedByCourses(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	base := baseImage(t, eng)
	shared := testName(t, "shared")
	cleanupImage(t, eng, shared)
	s := newSite()
	s.config["courses.yaml"] = file{data: "..."}
	s.config["images/"+shared+".dockerfile"] = file{data: "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"}
	s.courses["c1"] = map[string]file{"nb.ipynb": {data: "{}"}}
	s.courses["c2"] = map[string]file{"nb.ipynb": {data: "{}"}}
	yaml := fmt.Sprintf("version: 1\ncourses:\n  c1: {repo: https://x/c1.git, image: %s}\n  c2: {repo: https://x/c2.git, image: %s}\n", shared, shared)
	cfg := parseConfig(t, yaml)
	b := NewBuilder(eng, Options{Concurrency: 2})

	// Each course asks for its image at once, as a pass does: one build.
	// Specs are made first: go-git trees are not safe for concurrent use.
	trees := s.trees(t)
	var specs []*Spec
	for _, course := range []string{"c1", "c2"} {
		c := cfg.Courses[course]
		spec, err := NewSpec(cfg, c.ImageOf(), trees)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, spec)
	}
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i, spec := range specs {
		wg.Go(func() {
			var err error
			if results[i], err = b.Ensure(t.Context(), spec, EnsureOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if results[0].Built == results[1].Built {
		t.Errorf("built %v and %v, want exactly one build", results[0].Built, results[1].Built)
	}
	cur, err := b.Current(t.Context(), shared)
	if err != nil || !strings.HasSuffix(cur.Source, ":images/"+shared+".dockerfile") {
		t.Errorf("Current = %+v %v", cur, err)
	}
	builds, _ := b.Builds(t.Context(), shared)
	if len(builds) != 1 {
		t.Errorf("%d builds, want 1", len(builds))
	}
}

// A symlink in docker-image/ to a host file travels as a symlink: the
// host file's content never reaches the context nor the image.
func TestIntegrationSymlinkToHostFile(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	s, name, yaml, _ := courseSite(t, eng)
	secret := "nbhtest-secret-" + randHex(8)
	hostFile := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(hostFile, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	s.courses[name]["docker-image/leak"] = file{data: hostFile, link: true}
	s.courses[name]["docker-image/up"] = file{data: "../notebooks/a.ipynb", link: true}
	s.courses[name]["docker-image/nbhosting.Dockerfile"] = file{data: s.courses[name]["docker-image/nbhosting.Dockerfile"].data + "COPY . /ctx/\n"}
	res, err := ensure(t, b(eng), s, yaml, name, EnsureOptions{})
	if err != nil && isPodman(t, eng) {
		// podman's API refuses a context holding a symlink that leads
		// out of it (a 500 with no message): nothing reaches the image.
		t.Skipf("podman refuses the context: %v", err)
	}
	if err != nil || !res.Built {
		t.Fatalf("no build: %v", err)
	}
	img := name + ":latest"
	if code, out := run(t, eng, img, ContainerConfig{Entrypoint: []string{"/bin/tool", "readlink", "/ctx/leak"}}); code != 0 || strings.TrimSpace(out) != hostFile {
		t.Errorf("/ctx/leak is not the symlink to %s: %q", hostFile, out)
	}
	for _, p := range []string{"/ctx/leak", "/ctx/up"} {
		if code, out := run(t, eng, img, ContainerConfig{Entrypoint: []string{"/bin/tool", "cat", p}}); code == 0 || strings.Contains(out, secret) || strings.Contains(out, "{}") {
			t.Errorf("cat %s: exit %d, %q: content from outside docker-image/ reached the image", p, code, out)
		}
	}
}

func b(eng Engine) *Builder { return NewBuilder(eng, Options{Concurrency: 2}) }

// A failed build, a failed smoke command and a failed default check each
// leave the previous I:latest serving, and no tag on the failed build.
func TestIntegrationFailuresKeepLatest(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	s, name, yaml, base := courseSite(t, eng)
	bl := b(eng)
	good := mustEnsure(t, bl, s, yaml, name)
	head := "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"
	smokeYAML := yaml + fmt.Sprintf("images:\n  %s:\n    smoke: [/bin/tool, exit, \"3\"]\n", name)
	for _, tc := range []struct {
		name, df, yaml, stage, inLog string
	}{
		{"build", head + `RUN ["/bin/tool", "exit", "1"]` + "\n", yaml, "build", "exiting with 1"},
		{"smoke command", head + "ENV X=1\n", smokeYAML, "smoke", "exiting with 3"},
		{"script not executable", head + `RUN ["/bin/tool", "chmod", "644", "/usr/local/bin/start-in-dir-as-uid.sh"]` + "\n", yaml, "smoke", "not executable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.courses[name]["docker-image/nbhosting.Dockerfile"] = file{data: tc.df}
			_, err := ensure(t, bl, s, tc.yaml, name, EnsureOptions{})
			var be *BuildError
			if !errors.As(err, &be) || string(be.Stage) != tc.stage || !strings.Contains(be.Log, tc.inLog) {
				t.Fatalf("err = %v, want stage %s with %q in the log", err, tc.stage, tc.inLog)
			}
			cur, err := bl.Current(t.Context(), name)
			if err != nil || cur.ImageID != good.ImageID {
				t.Errorf("latest moved: %+v %v", cur, err)
			}
			builds, _ := bl.Builds(t.Context(), name)
			for _, bd := range builds {
				if bd.Key == be.Key && len(bd.Tags) > 0 {
					t.Errorf("failed build %s still tagged %v", bd.ImageID, bd.Tags)
				}
			}
		})
	}
}

func TestIntegrationPinAndPrune(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	s, name, yaml, _ := courseSite(t, eng)
	bl := NewBuilder(eng, Options{Keep: 2})
	var res []Result
	for i := range 3 {
		s.courses[name]["docker-image/data.txt"] = file{data: fmt.Sprintf("v%d\n", i)}
		res = append(res, mustEnsure(t, bl, s, yaml, name))
	}
	pinYAML := yaml + fmt.Sprintf("images:\n  %s:\n    pin: %s\n", name, res[0].Key[:16])
	r, err := ensure(t, bl, s, pinYAML, name, EnsureOptions{})
	if err != nil || !r.Pinned || r.Built {
		t.Fatalf("pin: %+v %v", r, err)
	}
	if code, out := run(t, eng, name+":latest", ContainerConfig{Entrypoint: []string{"/bin/tool", "cat", "/data.txt"}}); code != 0 || out != "v0\n" {
		t.Errorf("pinned latest serves %q", out)
	}
	bad := yaml + fmt.Sprintf("images:\n  %s:\n    pin: \"%s\"\n", name, strings.Repeat("0", 12))
	if _, err := ensure(t, bl, s, bad, name, EnsureOptions{}); err == nil || !strings.Contains(err.Error(), "no kept build") {
		t.Errorf("unknown pin: %v", err)
	}
	// Keep 2: builds 2 and 1 stay, 0 stays because latest is pinned to it.
	if removed, err := bl.Prune(t.Context(), name, nil); err != nil || len(removed) != 0 {
		t.Errorf("prune while pinned: %v %v", removed, err)
	}
	// Unpinned: latest back on build 2, and build 0 goes unless in use.
	mustEnsure(t, bl, s, yaml, name)
	if removed, _ := bl.Prune(t.Context(), name, map[string]bool{res[0].ImageID: true}); len(removed) != 0 {
		t.Errorf("prune removed an image in use: %v", removed)
	}
	removed, err := bl.Prune(t.Context(), name, nil)
	if err != nil || len(removed) != 1 || removed[0] != res[0].ImageID {
		t.Errorf("prune: %v %v, want [%s]", removed, err, res[0].ImageID)
	}
}

// lineWatcher closes seen once a log line contains want.
type lineWatcher struct {
	want string
	once sync.Once
	seen chan struct{}
	t    *testing.T
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// Cancelling a build in the middle of a RUN (the client gone, as when the
// process is killed) leaves no image with the key, and an image the process
// built but never smoke-tested is not taken for a build.
func TestIntegrationInterruptedBuild(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	s, name, yaml, base := courseSite(t, eng)
	bl := b(eng)
	good := mustEnsure(t, bl, s, yaml, name)

	s.courses[name]["docker-image/nbhosting.Dockerfile"] = file{data: "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n" + `RUN ["/bin/tool", "sleep", "120"]` + "\n"}
	spec, err := NewSpec(parseConfig(t, yaml), name, s.trees(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	w := &lineWatcher{want: "sleep", seen: make(chan struct{}), t: t}
	done := make(chan error, 1)
	go func() {
		_, err := bl.Ensure(ctx, spec, EnsureOptions{Log: w})
		done <- err
	}()
	select {
	case <-w.seen:
	case err := <-done:
		t.Fatalf("build ended before its RUN: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the RUN step never started")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := eng.ImageList(t.Context(), LabelBuildKey+"="+spec.Key)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("images with the interrupted key remain: %+v", list)
		}
		time.Sleep(100 * time.Millisecond) // poll the engine's clean-up
	}
	if cur, err := bl.Current(t.Context(), name); err != nil || cur.ImageID != good.ImageID {
		t.Errorf("latest moved: %+v %v", cur, err)
	}

	// A process killed after its build but before the smoke test passed
	// left the scratch tag I:build-<key>: that is no build, it is rebuilt.
	s.courses[name]["docker-image/nbhosting.Dockerfile"] = file{data: "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nENV STEP=2\n"}
	spec, err = NewSpec(parseConfig(t, yaml), name, s.trees(t))
	if err != nil {
		t.Fatal(err)
	}
	half := engineBuild(t, eng, name+":build-"+spec.ShortKey(), map[string]ctxFile{
		"Dockerfile": {data: "FROM " + base + "\n"},
	}, map[string]string{LabelImage: name, LabelBuildKey: spec.Key, LabelSource: spec.Source})
	res, err := bl.Ensure(t.Context(), spec, EnsureOptions{Log: testLog(t)})
	if err != nil || !res.Built || res.ImageID == half {
		t.Fatalf("after a half build: built %v id %s (half %s): %v", res.Built, res.ImageID, half, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
