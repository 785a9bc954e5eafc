package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
)

// requireDocker returns a client of the real engine; it skips without one,
// or fails when NBH_REQUIRE_DOCKER=1.
func requireDocker(t *testing.T) *client.Client { return fjtest.RequireDocker(t) }

// testSite builds a fake Jupyter image tagged <course>:latest and returns
// the course, its image ID and a Manager on the real engine.
func testSite(t *testing.T) (manifest.Course, string, *Manager, *client.Client) {
	t.Helper()
	cli := requireDocker(t)
	name := "nbhtest-ctr-" + fjtest.Suffix()
	id := fjtest.Build(t, cli, fjtest.Binary(t), name+":latest")
	fjtest.CleanupContainers(t, cli, name+naming.Sep)
	co := manifest.Course{Name: name, Container: manifest.Container{
		Port:    8888,
		Memory:  64 << 20,
		Command: []string{"/fakejupyter", "--port=8888", "--base-url=/{port}/"},
		Mounts:  []string{"{root}/students/{student}/{course}:/home/jovyan/work"},
	}}
	return co, id, New(NewDocker(cli), nil, nil), cli
}

func TestEngineSpawnLifecycle(t *testing.T) {
	t.Parallel()
	co, imageID, m, _ := testSite(t)
	ctx := t.Context()
	root := t.TempDir()
	opts := SpawnOptions{Root: root, UID: "1000"}

	got, err := m.Spawn(ctx, co, "alice", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Created || got.Port == 0 {
		t.Fatalf("first spawn = %+v", got)
	}
	resp, err := http.Get(got.URL + "api")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("server at %s: %v", got.URL, err)
	}
	resp.Body.Close()
	if uid := statUID(t, filepath.Join(root, "students", "alice", co.Name)); uid != 1000 {
		t.Errorf("work dir uid = %d", uid)
	}

	again, err := m.Spawn(ctx, co, "alice", opts)
	if err != nil || again.State != Existing || again.ID != got.ID || again.Port != got.Port {
		t.Fatalf("second spawn = %+v, %v", again, err)
	}

	cs, err := m.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := find(cs, got.Name)
	if c == nil || c.State != Running || c.ImageID != imageID || c.Port != got.Port || c.UID != "1000" || c.Adopted || c.StartedAt.IsZero() {
		t.Fatalf("listed = %+v", c)
	}

	if err := m.Stop(ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx, got.ID); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	cs, _ = m.List(ctx, nil)
	if c := find(cs, got.Name); c == nil || c.State != Stopped || c.Port != got.Port {
		t.Fatalf("after stop: %+v", c)
	}
	started, err := m.Spawn(ctx, co, "alice", opts)
	if err != nil || started.State != Started || started.ID != got.ID || started.Port != got.Port {
		t.Fatalf("spawn of stopped = %+v, %v", started, err)
	}

	if err := m.Remove(ctx, got.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(ctx, got.ID); err != nil {
		t.Fatalf("remove of a missing container: %v", err)
	}
	if _, err := m.Get(ctx, co.Name, "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after remove = %v", err)
	}

	cur, err := m.CurrentImages(ctx, []string{co.Name, "nbhtest-ctr-nosuchimage"})
	if err != nil || len(cur) != 1 || cur[co.Name] != imageID {
		t.Fatalf("CurrentImages = %v, %v", cur, err)
	}
}

func TestEngineConcurrentSpawnsMakeOneContainer(t *testing.T) {
	t.Parallel()
	co, _, m, cli := testSite(t)
	// A second Manager with its own Locks stands for another process: only
	// the engine's name uniqueness keeps the two apart.
	other := New(NewDocker(cli), nil, nil)
	opts := SpawnOptions{Root: t.TempDir(), UID: "1000"}
	var wg sync.WaitGroup
	res := make([]Spawned, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			mm := m
			if i%2 == 1 {
				mm = other
			}
			res[i], errs[i] = mm.Spawn(t.Context(), co, "bob", opts)
		})
	}
	wg.Wait()
	created := 0
	for i := range 20 {
		if errs[i] != nil {
			t.Fatalf("spawn %d: %v", i, errs[i])
		}
		if res[i].ID != res[0].ID || res[i].Port != res[0].Port {
			t.Errorf("spawn %d got %+v, spawn 0 got %+v", i, res[i], res[0])
		}
		if res[i].State == Created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d spawns say created, want 1", created)
	}
	cs, err := m.List(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Course == co.Name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d containers for the course, want 1", n)
	}
}

func TestEngineAdoptsAndIgnores(t *testing.T) {
	t.Parallel()
	co, imageID, m, cli := testSite(t)
	ctx := t.Context()
	// Made by hand the way nbhosting does: the name pattern, no labels.
	mk := func(name string, labels map[string]string) string {
		res, err := cli.ContainerCreate(ctx, &container.Config{Image: imageID, Cmd: []string{"/fakejupyter"}, Labels: labels}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	adopted := mk(co.Name+"-x-carol", nil)
	unrelated := "nbhtest-ctr-unrelated-" + fjtest.Suffix()
	fjtest.CleanupContainers(t, cli, unrelated)
	unrelatedID := mk(unrelated, nil)
	foreign := mk(co.Name+"-x-dave", map[string]string{LabelManagedBy: "someone-else"})

	// Not adopted unless its course is the site's.
	cs, err := m.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := find(cs, co.Name+"-x-carol"); c != nil {
		t.Errorf("adopted without its course being the site's: %+v", c)
	}
	cs, err = m.List(ctx, func(c string) bool { return c == co.Name })
	if err != nil {
		t.Fatal(err)
	}
	if c := find(cs, co.Name+"-x-carol"); c == nil || !c.Adopted || c.ID != adopted || c.Student != "carol" || c.State != Stopped {
		t.Errorf("adopted = %+v", c)
	}
	for _, c := range cs {
		if c.ID == unrelatedID || c.ID == foreign {
			t.Errorf("listed a container nbh-sync must not touch: %+v", c)
		}
	}
	// A spawn for dave must refuse the foreign container, not replace it.
	if _, err := m.Spawn(ctx, co, "dave", SpawnOptions{Root: t.TempDir(), UID: "1000"}); !errors.Is(err, ErrNotManaged) {
		t.Errorf("spawn over a foreign container = %v, want ErrNotManaged", err)
	}
	if _, err := cli.ContainerInspect(ctx, foreign); err != nil {
		t.Errorf("foreign container gone: %v", err)
	}
	// The adopted one has no published port to reach it by: a spawn
	// makes it again, labelled, with the student's files kept on the host.
	got, err := m.Spawn(ctx, co, "carol", SpawnOptions{Root: t.TempDir(), UID: "1000"})
	if err != nil || got.State != Created || got.ID == adopted {
		t.Errorf("spawn over adopted = %+v, %v", got, err)
	}
	if _, err := cli.ContainerInspect(ctx, unrelatedID); err != nil {
		t.Errorf("unrelated container gone: %v", err)
	}
}

func find(cs []Container, name string) *Container {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// TestEngineRefusesForeignImage: an image nbh-sync did not build, under the
// course image's name — a docker import, here of an empty tar — is never
// spawned: not when it is the only one, and not when it replaced a build
// of the site as :latest; the pass does not take it as current either.
func TestEngineRefusesForeignImage(t *testing.T) {
	t.Parallel()
	co, builtID, m, cli := testSite(t)
	ctx := t.Context()
	imported := func(ref string) string {
		var tarball bytes.Buffer
		if err := tar.NewWriter(&tarball).Close(); err != nil {
			t.Fatal(err)
		}
		rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &tarball, SourceName: "-"}, ref, image.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rc)
		rc.Close()
		t.Cleanup(func() {
			_, _ = cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
		})
		im, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return im.ID
	}
	spawnRefused := func(course manifest.Course) {
		t.Helper()
		_, err := m.Spawn(ctx, course, "eve", SpawnOptions{Root: t.TempDir(), UID: "1000"})
		want := "image " + course.Name + ":latest was not built by this site (no org.nbhosting.build-key label) — run `nbh-sync build " + course.Name + "`"
		if !errors.Is(err, ErrImageNotBuilt) || !strings.Contains(err.Error(), want) {
			t.Errorf("spawn from a foreign %s:latest = %v, want %q", course.Name, err, want)
		}
		if _, err := cli.ContainerInspect(ctx, naming.Container(course.Name, "eve")); err == nil {
			t.Errorf("a container was made from the foreign image")
		}
	}

	// Only a foreign image of that name.
	other := co
	other.Name = co.Name + "-imp"
	fjtest.CleanupContainers(t, cli, other.Name+naming.Sep)
	imported(other.Name + ":latest")
	spawnRefused(other)

	// A foreign image moved over the site's build.
	foreignID := imported(co.Name + ":latest")
	if foreignID == builtID {
		t.Fatal("the import did not replace :latest")
	}
	spawnRefused(co)
	cur, err := m.CurrentImages(ctx, []string{co.Name, other.Name})
	if err != nil || len(cur) != 0 {
		t.Errorf("CurrentImages = %v, %v; want no current image of either", cur, err)
	}

	// The site's build back as :latest: spawns work again.
	fjtest.Tag(t, cli, builtID, co.Name+":latest")
	if sp, err := m.Spawn(ctx, co, "eve", SpawnOptions{Root: t.TempDir(), UID: "1000"}); err != nil || sp.State != Created {
		t.Errorf("spawn from the site's build = %+v, %v", sp, err)
	}
}
