package site_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/site"
)

// imageSite is a site on the shared engine whose config repo defines a
// core image and a course image built FROM it, both under names that
// another imageSite of the same prefix uses too; mark ends up in the
// images' environment (SITE=mark), so a build shows which site's core it
// was made on.
type imageSite struct {
	*site.Site
	root, config string
}

func newImageSite(t *testing.T, prefix, mark string) *imageSite {
	t.Helper()
	dir := t.TempDir()
	s := &imageSite{root: filepath.Join(dir, "root"), config: filepath.Join(dir, "config")}
	core, course := prefix+"-core", prefix+"-c"
	s.write(t, map[string]string{
		"courses.yaml":                     "version: 1\nimages:\n  " + core + ": {dockerfile: images/core.dockerfile}\ncourses:\n  " + course + ": {repo: ., path: c}\n",
		"c/README.md":                      "the course\n",
		"images/core.dockerfile":           "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nENV SITE=" + mark + "\n",
		"images/" + course + ".dockerfile": "FROM " + core + "\nENV COURSE=" + mark + "\n",
	})
	testenv.Git(t, s.config, "init", "-q", "-b", "main")
	s.commit(t, "a core and a course")
	st, err := site.New(site.Options{Config: s.config, Root: s.root, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.Site = st
	if _, err := st.Pull(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *imageSite) write(t *testing.T, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(s.config, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *imageSite) commit(t *testing.T, msg string) {
	t.Helper()
	testenv.Git(t, s.config, "add", "-A")
	testenv.Git(t, s.config, "commit", "-q", "-m", msg)
}

// latest is what the site's image serves: its ID and environment.
func (s *imageSite) latest(t *testing.T, cli *client.Client, name string) (string, []string) {
	t.Helper()
	im, err := cli.ImageInspect(t.Context(), imageref.Repository(site.SiteName(s.root), name)+":latest")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return im.ID, im.Config.Env
}

func (s *imageSite) buildAll(t *testing.T) (built []string) {
	t.Helper()
	res, err := s.BuildAll(t.Context(), false)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for _, r := range res {
		if r.Built {
			built = append(built, r.Image)
		}
	}
	slices.Sort(built)
	return built
}

// removeImagesOf removes, at the end of the test, every image labelled as
// a build of one of names, whatever its tags. Names are in build order
// (bases first), so they are removed the other way round: an image with
// children cannot be.
func removeImagesOf(t *testing.T, cli *client.Client, names ...string) {
	t.Cleanup(func() {
		ctx := context.Background()
		for _, n := range slices.Backward(names) {
			list, _ := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", images.LabelImage+"="+n))})
			for _, im := range list {
				_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			}
		}
	})
}

// TestTwoSitesSameImageNames: two sites on one engine build images of the
// same names (a core image and a course image FROM it). Each builds on
// its own core, serves its own builds, never moves the other's, never
// calls the other's build current (so its own students' containers are not
// stale because of it), and prunes only its own.
func TestTwoSitesSameImageNames(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDocker(t)
	ctx := t.Context()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "nbhtest-2s-" + hex.EncodeToString(b)
	core, course := prefix+"-core", prefix+"-c"
	removeImagesOf(t, cli, core, course)
	fjtest.CleanupContainers(t, cli, prefix)

	a, bsite := newImageSite(t, prefix, "a"), newImageSite(t, prefix, "b")
	if built := a.buildAll(t); !slices.Equal(built, []string{course, core}) && !slices.Equal(built, []string{core, course}) {
		t.Fatalf("site A built %v, want both images", built)
	}
	aID, aEnv := a.latest(t, cli, course)
	if !slices.Contains(aEnv, "SITE=a") || !slices.Contains(aEnv, "COURSE=a") {
		t.Fatalf("A's course image has env %v: not built on A's core", aEnv)
	}
	// A student's container of A's, stopped, on A's current image.
	ctr, err := cli.ContainerCreate(ctx, &container.Config{Image: aID, Cmd: []string{"/never-run"}, Labels: map[string]string{
		containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: course, containers.LabelStudent: "ann",
		containers.LabelSite: site.SiteName(a.root)}}, nil, nil, nil, naming.Container(course, "ann"))
	if err != nil {
		t.Fatal(err)
	}

	// B builds the same names: its own builds, on its own core.
	if built := bsite.buildAll(t); len(built) != 2 {
		t.Fatalf("site B built %v, want both images (A's are not B's)", built)
	}
	bID, bEnv := bsite.latest(t, cli, course)
	if bID == aID || !slices.Contains(bEnv, "SITE=b") || !slices.Contains(bEnv, "COURSE=b") {
		t.Fatalf("B's course image %s (A's %s) has env %v: want B's own, on B's core", bID, aID, bEnv)
	}
	if id, _ := a.latest(t, cli, course); id != aID {
		t.Errorf("B's build moved A's %s:latest", course)
	}
	if built := a.buildAll(t); len(built) != 0 {
		t.Errorf("A rebuilt %v after B's builds", built)
	}
	rep, err := a.Pass(ctx, site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkKept(t, rep, ctr.ID, "after B's build")

	// A changes its core: both of A's images are built again, and A's
	// prune (keep: the default) never touches B's builds.
	a.write(t, map[string]string{"images/core.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nENV SITE=a2\n"})
	a.commit(t, "core v2")
	if _, err := a.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	for range 4 { // more builds than any keep: A prunes
		if built := a.buildAll(t); len(built) != 2 {
			t.Fatalf("A built %v after its core changed, want both", built)
		}
		a.write(t, map[string]string{"c/.nbh-rev": randomHex(t)})
		a.write(t, map[string]string{"images/core.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nENV SITE=a\nENV REV=" + randomHex(t) + "\n"})
		a.commit(t, "core again")
		if _, err := a.Pull(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Pass(ctx, site.PassOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if id, env := bsite.latest(t, cli, course); id != bID || !slices.Contains(env, "SITE=b") {
		t.Errorf("B's %s:latest is %s (env %v) after A's builds and prunes, want %s", course, id, env, bID)
	}
}

// TestUnscopedImagesAdopted: a site upgraded from a version whose builds
// were tagged by bare image names adopts the builds of its current inputs
// (a core and a course image FROM it): nothing is rebuilt, and a
// student's container on the old build is not stale.
func TestUnscopedImagesAdopted(t *testing.T) {
	cli := testenv.RequireDocker(t)
	ctx := t.Context()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "nbhtest-mig-" + hex.EncodeToString(b)
	core, course := prefix+"-core", prefix+"-c"
	removeImagesOf(t, cli, core, course)
	fjtest.CleanupContainers(t, cli, prefix)
	s := newImageSite(t, prefix, "a")

	// The builds as the older version left them: labels without a site,
	// tags I:<short key> and I:latest.
	legacy := map[string]string{}
	for _, name := range []string{core, course} {
		spec, err := s.Spec(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		df := "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nLABEL " + images.LabelImage + "=" + name + " " + images.LabelBuildKey + "=" + spec.Key + " " + images.LabelSource + "=old\n"
		id, err := testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte(df)}, {Name: "start-in-dir-as-uid.sh", Data: images.StartScript, Mode: 0o755}},
			name+":"+spec.ShortKey(), name+":latest")
		if err != nil {
			t.Fatal(err)
		}
		legacy[name] = id
	}
	ctr, err := cli.ContainerCreate(ctx, &container.Config{Image: legacy[course], Cmd: []string{"/never-run"}, Labels: map[string]string{
		containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: course, containers.LabelStudent: "ann",
		containers.LabelSite: site.SiteName(s.root)}}, nil, nil, nil, naming.Container(course, "ann"))
	if err != nil {
		t.Fatal(err)
	}

	plan, err := s.Plan(ctx, site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pb := range plan.Builds {
		if pb.Action != string(images.ActionTag) {
			t.Errorf("plan for %s: %s (%s), want the unscoped build adopted", pb.Image, pb.Action, pb.Reason)
		}
	}
	if built := s.buildAll(t); len(built) != 0 {
		t.Fatalf("the upgrade rebuilt %v", built)
	}
	for name, id := range legacy {
		if got, _ := s.latest(t, cli, name); got != id {
			t.Errorf("%s: serves %s, want the adopted %s", name, got, id)
		}
	}
	rep, err := s.Pass(ctx, site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkKept(t, rep, ctr.ID, "after the upgrade")
}

// checkKept checks that a pass kept the stopped container id, its image
// current.
func checkKept(t *testing.T, rep site.PassReport, id, when string) {
	t.Helper()
	for _, act := range rep.Actions {
		if act.ID == id && (act.Kind != reconcile.Keep || !strings.Contains(act.Reason, "image current")) {
			t.Errorf("%s: the pass acts on ann's container: %s (%s)", when, act.Kind, act.Reason)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
