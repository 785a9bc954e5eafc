package site_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/site"
)

// TestSiteBoundaryOnSharedEngine runs the real container pass of a site, on
// the real (shared) engine, many times — before and after a config commit
// that removes every course, with and without the mass-prune confirmation —
// beside containers of others: one labelled for another site, one labelled
// managed-by=nbh-sync with no site, both of a course this site has, and an
// unlabelled COURSE-x-STUDENT of a course it never had. Those survive every
// pass. The site's own containers (one labelled for it, one unlabelled of
// one of its courses) are kept while their courses are in courses.yaml,
// held when the commit removes every course, and removed once confirmed:
// the pass does act, on what is its own.
func TestSiteBoundaryOnSharedEngine(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDocker(t)
	ctx := t.Context()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	prefix := "nbhtest-bnd-" + hex.EncodeToString(b)
	courseA, courseR, unknown := prefix+"-a", prefix+"-r", prefix+"-u"

	// A tiny image for the containers, which are created and never run.
	imgID, err := testenv.BuildImage(ctx, cli, []testenv.File{
		{Name: "Dockerfile", Data: []byte("FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n")},
		{Name: "f", Data: []byte("not a program\n")},
	}, prefix+"-img:latest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), prefix+"-img:latest", image.RemoveOptions{Force: true, PruneChildren: true})
	})
	fjtest.CleanupContainers(t, cli, prefix)

	// The site: a config repo holding both courses (repo: .) and their
	// image definitions.
	dir := t.TempDir()
	config, root := filepath.Join(dir, "config"), filepath.Join(dir, "root")
	write := func(rel, content string) {
		p := filepath.Join(config, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("courses.yaml", "version: 1\ncourses:\n  "+courseA+": {repo: ., path: a}\n  "+courseR+": {repo: ., path: r}\n")
	write("a/README.md", "a\n")
	write("r/README.md", "r\n")
	for _, c := range []string{courseA, courseR} {
		write("images/"+c+".dockerfile", "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n")
	}
	testenv.Git(t, config, "init", "-q", "-b", "main")
	testenv.Git(t, config, "add", "-A")
	testenv.Git(t, config, "commit", "-q", "-m", "two courses")

	st, err := site.New(site.Options{Config: config, Root: root, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pull(ctx); err != nil {
		t.Fatalf("pull: %v", err)
	}

	mk := func(course, student string, labels map[string]string) string {
		res, err := cli.ContainerCreate(ctx, &container.Config{Image: imgID, Labels: labels}, nil, nil, nil, naming.Container(course, student))
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	managed := func(course, student, siteName string) map[string]string {
		l := map[string]string{containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: course, containers.LabelStudent: student}
		if siteName != "" {
			l[containers.LabelSite] = siteName
		}
		return l
	}
	foreign := map[string]string{
		"labelled for another site":           mk(courseA, "theirs", managed(courseA, "theirs", "/srv/another-site")),
		"labelled managed-by, no site":        mk(courseA, "nosite", managed(courseA, "nosite", "")),
		"unlabelled, course never the site's": mk(unknown, "y", nil),
	}
	own := map[string]string{
		"labelled for this site":         mk(courseA, "mine", managed(courseA, "mine", site.SiteName(root))),
		"unlabelled, one of its courses": mk(courseR, "old", nil),
	}
	exists := func(id string) bool {
		_, err := cli.ContainerInspect(ctx, id)
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Fatalf("inspect %s: %v", id, err)
		}
		return err == nil
	}
	check := func(when string, ownWanted bool) {
		t.Helper()
		for what, id := range foreign {
			if !exists(id) {
				t.Fatalf("%s: the container %s (%s) is gone", when, what, id[:12])
			}
		}
		for what, id := range own {
			if exists(id) != ownWanted {
				t.Errorf("%s: the site's container %s exists = %v, want %v", when, what, !ownWanted, ownWanted)
			}
		}
	}
	pass := func(when string, allow bool) site.PassReport {
		t.Helper()
		rep, err := st.Pass(ctx, site.PassOptions{AllowMassPrune: allow})
		if err != nil {
			t.Fatalf("%s: pass: %v", when, err)
		}
		for _, a := range rep.Actions {
			if slices.Contains([]string{"theirs", "nosite", "y"}, a.Student) {
				t.Errorf("%s: the plan names a container that is not the site's: %+v", when, a)
			}
		}
		return rep
	}

	for i := range 3 {
		rep := pass("with both courses", i%2 == 1)
		if len(rep.Actions) != 2 {
			t.Errorf("with both courses: %d actions, want the site's 2: %+v", len(rep.Actions), rep.Actions)
		}
		check("with both courses", true)
	}

	// The record of the site's courses, private to the site.
	fi, err := os.Stat(filepath.Join(root, "state", "known-courses.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known-courses.json: %v, %v; want mode 0600", fi, err)
	}
	var rec struct{ Courses []string }
	if b, err := os.ReadFile(filepath.Join(root, "state", "known-courses.json")); err != nil || json.Unmarshal(b, &rec) != nil ||
		!slices.Equal(rec.Courses, []string{courseA, courseR}) {
		t.Errorf("known-courses.json = %s, %v; want %s and %s", b, err, courseA, courseR)
	}

	// A commit removes every course.
	write("courses.yaml", "version: 1\ncourses: {}\n")
	testenv.Git(t, config, "commit", "-q", "-am", "no more courses")
	if rep, err := st.Pull(ctx); err != nil || !rep.ConfigChanged {
		t.Fatalf("pull of the emptied config: changed %v, %v", rep.ConfigChanged, err)
	}
	for range 3 {
		rep := pass("every course removed", false)
		for _, a := range rep.Actions {
			if a.Kind != "hold" || !strings.Contains(a.Reason, "--allow-mass-prune") {
				t.Errorf("every course removed: %s %s (%s), want a mass-prune hold", a.Kind, a.Container, a.Reason)
			}
		}
		check("every course removed, unconfirmed", true)
	}
	for range 2 {
		pass("every course removed, confirmed", true)
	}
	check("every course removed, confirmed", false)
	for range 2 {
		if rep := pass("after the prune", true); len(rep.Actions) != 0 {
			t.Errorf("after the prune: actions %+v, want none", rep.Actions)
		}
		check("after the prune", false)
	}
}
