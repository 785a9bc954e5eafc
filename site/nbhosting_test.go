package site_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/site"
)

// fixtureBase is what the core-image fixtures are built FROM (see
// testdata/nbhosting/README.md).
const fixtureBase = "nbhtest-jupyter2:latest"

// nbhSite is an nbhosting site moved to nbh-sync: nbhosting's real core
// images in the config repo's images/ folder, and course repos built on
// them — one in sample-course's real .nbhosting/ layout, one in the
// nbhosting/ layout, one whose build fails.
type nbhSite struct {
	ns      string // the random namespace standing for nbhosting/
	config  string // config work tree
	courses map[string]string
	root    string
	hist    *history.Store
	site    *site.Site
}

func (n *nbhSite) scipy() string   { return n.ns + "/scipy-notebook" }
func (n *nbhSite) minimal() string { return n.ns + "/minimal-notebook" }
func (n *nbhSite) course(c string) string {
	return n.ns + "-" + c
}

func copyFile(t *testing.T, from, to string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(from)
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(to, []byte(s), fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func commitAll(t *testing.T, dir, msg string) {
	t.Helper()
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "-q", "-m", msg)
}

func newNbhSite(t *testing.T, cli *client.Client) *nbhSite {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	dir := t.TempDir()
	n := &nbhSite{ns: "nbhtest-" + hex.EncodeToString(b), config: filepath.Join(dir, "config"), root: filepath.Join(dir, "root"),
		courses: map[string]string{}}
	t.Cleanup(func() {
		testenv.RemoveImagesLabelled(cli, images.LabelImage, n.scipy(), n.minimal(), n.course("a"), n.course("b"), n.course("c"))
	})
	renamed := func(s string) string { return strings.ReplaceAll(s, "FROM nbhosting/", "FROM "+n.ns+"/") }

	// The config repo: nbhosting's images/ folder as it is, and a
	// courses.yaml naming its core images.
	for _, f := range []string{"nbhosting-scipy-notebook.Dockerfile", "nbhosting-minimal-notebook.Dockerfile",
		"nbhosting-image-root.sh", "nbhosting-image-jovyan.sh", "start-in-dir-as-uid.sh"} {
		copyFile(t, filepath.Join("testdata/nbhosting/images", f), filepath.Join(n.config, "images", f), nil)
	}

	// course a: sample-course, unchanged but for the namespace.
	a := filepath.Join(dir, "a")
	for _, f := range []string{".nbhosting/Dockerfile", ".nbhosting/nbhosting.yaml", "README.md", "jupytext-python.py"} {
		copyFile(t, filepath.Join("testdata/nbhosting/sample-course", f), filepath.Join(a, f), renamed)
	}
	// course b: the nbhosting/ layout, with a file of its folder copied in.
	bdir := filepath.Join(dir, "b")
	writeFile(t, filepath.Join(bdir, "nbhosting/Dockerfile"), "FROM "+n.scipy()+"\nCOPY requirements.txt /opt/b/\n")
	writeFile(t, filepath.Join(bdir, "nbhosting/requirements.txt"), "numpy\n")
	writeFile(t, filepath.Join(bdir, "lesson.ipynb"), "{}\n")
	// course c: on the other core image, and its build fails.
	c := filepath.Join(dir, "c")
	writeFile(t, filepath.Join(c, ".nbhosting/Dockerfile"), "FROM "+n.minimal()+"\nRUN echo installing; exit 3\n")
	writeFile(t, filepath.Join(c, "lesson.ipynb"), "{}\n")
	for name, d := range map[string]string{"a": a, "b": bdir, "c": c} {
		testenv.Git(t, d, "init", "-q", "-b", "main")
		commitAll(t, d, "course "+name)
		n.courses[name] = d
	}

	writeFile(t, filepath.Join(n.config, "courses.yaml"), fmt.Sprintf(`version: 1
images:
  %[1]s:
    dockerfile: images/nbhosting-scipy-notebook.Dockerfile
  %[2]s:
    dockerfile: images/nbhosting-minimal-notebook.Dockerfile
courses:
  %[3]s:
    repo: %[4]s
  %[5]s:
    repo: %[6]s
  %[7]s:
    repo: %[8]s
`, n.scipy(), n.minimal(), n.course("a"), a, n.course("b"), bdir, n.course("c"), c))
	testenv.Git(t, n.config, "init", "-q", "-b", "main")
	commitAll(t, n.config, "site")

	hist, err := history.Open(rootdir.History(n.root), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hist.Close() })
	n.hist = hist
	ie, ce := requireEngines(t)
	if n.site, err = site.New(site.Options{Config: n.config, Root: n.root, History: hist, ImageEngine: ie, ContainerEngine: ce}); err != nil {
		t.Fatal(err)
	}
	return n
}

// logBuilds logs what a sync built and how long each build took.
func logBuilds(t *testing.T, what string, rep site.SyncReport) {
	t.Helper()
	for _, r := range rep.Builds {
		if r.Built || r.Err != "" {
			t.Logf("%s: %s built=%v in %s %s", what, r.Image, r.Built, r.Duration.Round(100*time.Millisecond), firstLine(r.Err))
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// built returns the images a sync built, in the order their builds started.
func built(rep site.SyncReport) []string {
	res := slices.Clone(rep.Builds)
	res = slices.DeleteFunc(res, func(r images.Result) bool { return !r.Built })
	slices.SortFunc(res, func(a, b images.Result) int { return a.Started.Compare(b.Started) })
	var out []string
	for _, r := range res {
		out = append(out, r.Image)
	}
	return out
}

func result(rep site.SyncReport, image string) images.Result {
	for _, r := range rep.Builds {
		if r.Image == image {
			return r
		}
	}
	return images.Result{}
}

// TestNbhostingSite: nbhosting's real core images and sample-course's real
// .nbhosting/ layout build as on nbhosting — core images first, courses on
// them, each smoke-tested — and a failing course is its own business.
func TestNbhostingSite(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	if _, err := cli.ImageInspect(t.Context(), fixtureBase); err != nil {
		if os.Getenv(jupytertest.RequireEnv) == "1" || os.Getenv(testenv.RequireDockerEnv) == "1" {
			t.Fatalf("%s missing (testimages/jupyter/build.sh --gen 2): %v", fixtureBase, err)
		}
		t.Skipf("%s missing (testimages/jupyter/build.sh --gen 2 builds it): %v", fixtureBase, err)
	}
	n := newNbhSite(t, cli)
	ctx := t.Context()
	a, b, c := n.course("a"), n.course("b"), n.course("c")

	// The plan says where each Dockerfile is and what is built on what.
	// (A plan reads the mirrors: fetch first, as the command line does.)
	if err := n.site.Fetch(ctx); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	plan, err := n.site.Plan(ctx, site.PassOptions{})
	if err != nil {
		t.Fatalf("plan: %v (%v)", err, plan.Errors)
	}
	pb := map[string]api.PlanBuild{}
	for _, p := range plan.Builds {
		pb[p.Image] = p
	}
	if p := pb[a]; p.Action != "build" || p.Base != n.scipy() || p.Dockerfile != "course "+a+": .nbhosting/Dockerfile" {
		t.Errorf("plan of %s: %+v", a, p)
	}
	if p := pb[b]; p.Dockerfile != "course "+b+": nbhosting/Dockerfile" {
		t.Errorf("plan of %s: %+v", b, p)
	}
	if p := pb[n.scipy()]; !slices.Equal(p.Cascade, []string{a, b}) || p.Reason != "no build yet" {
		t.Errorf("plan of %s: %+v", n.scipy(), p)
	}
	if plan.Config.Change != "apply" {
		t.Errorf("config change %q", plan.Config.Change)
	}

	// First sync: the config applies; core images, then the courses on
	// them; course c fails alone.
	start := time.Now()
	rep, err := n.site.Sync(ctx, site.SyncOptions{})
	t.Logf("first sync: %s", time.Since(start).Round(100*time.Millisecond))
	logBuilds(t, "first sync", rep)
	if err == nil || !strings.Contains(err.Error(), "image "+c+": build") {
		t.Fatalf("sync: want course c's build failure, got %v", err)
	}
	if rep.Pull.Rejected != nil || rep.Pull.ConfigCommit == "" {
		t.Fatalf("config not applied: %+v", rep.Pull)
	}
	got := built(rep)
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values([]string{n.minimal(), n.scipy(), a, b}))) {
		t.Fatalf("built %v", got)
	}
	scipy := result(rep, n.scipy())
	for _, course := range []string{a, b} {
		if r := result(rep, course); r.Started.Before(scipy.Started.Add(scipy.Duration)) {
			t.Errorf("%s started before its base was built", course)
		}
		if !strings.Contains(result(rep, course).Log, "smoke test passed") {
			t.Errorf("%s: no smoke test in its log", course)
		}
	}
	// The course images inherit the start script: no COPY of their own,
	// yet the smoke test found it in the built image.
	if lg := result(rep, a).Log; strings.Contains(lg, "must COPY") || strings.Contains(lg, "cannot check") {
		t.Errorf("lint of %s complains about the inherited start script:\n%s", a, lg)
	}

	st, err := n.site.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range st.Images {
		switch im.Name {
		case a, b:
			if im.Base != n.scipy() || im.BuildKey == "" || im.Failed != nil {
				t.Errorf("status of %s: %+v", im.Name, im)
			}
		case c:
			if im.Base != n.minimal() || im.Failed == nil || im.Failed.Stage != "build" || !strings.Contains(im.Failed.LogTail, "installing") {
				t.Errorf("status of %s: %+v", im.Name, im)
			}
		}
	}
	for _, co := range st.Courses {
		if (co.Name == c) != (co.ImageError != "") {
			t.Errorf("course %s: image error %q", co.Name, co.ImageError)
		}
	}
	recs, err := n.hist.Query(ctx, history.Query{Kinds: []history.Kind{history.KindBuild}, Course: c, WithLog: true})
	if err != nil || len(recs) != 1 || recs[0].Result != "failed" || !strings.Contains(recs[0].Log, "installing") {
		t.Fatalf("history of %s: %+v %v", c, recs, err)
	}

	// The plan now agrees with what the sync did: nothing to build, and
	// the failed course held until new inputs (or 30 minutes).
	plan, _ = n.site.Plan(ctx, site.PassOptions{})
	for _, p := range plan.Builds {
		want := "none"
		if p.Image == c {
			want = "hold"
		}
		if p.Action != want {
			t.Errorf("plan after sync: %s %s (%s), want %s", p.Image, p.Action, p.Reason, want)
		}
	}

	t.Run("notebook-only commit builds nothing", func(t *testing.T) {
		writeFile(t, filepath.Join(n.courses["a"], "jupytext-python.py"), "# edited\n")
		writeFile(t, filepath.Join(n.courses["a"], "new.ipynb"), "{}\n")
		commitAll(t, n.courses["a"], "notebooks")
		rep, _ := n.site.Sync(ctx, site.SyncOptions{})
		if got := built(rep); len(got) != 0 {
			t.Errorf("built %v", got)
		}
	})

	t.Run("core image change cascades once", func(t *testing.T) {
		df := filepath.Join(n.config, "images/nbhosting-scipy-notebook.Dockerfile")
		old, _ := os.ReadFile(df)
		writeFile(t, df, string(old)+"\nRUN echo v2 > /etc/nbh-core-version\n")
		commitAll(t, n.config, "core image v2")

		if err := n.site.Fetch(ctx); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		plan, _ := n.site.Plan(ctx, site.PassOptions{})
		for _, p := range plan.Builds {
			if p.Image == n.scipy() && (p.Action != "build" || !slices.Equal(p.Cascade, []string{a, b})) {
				t.Errorf("plan of the core image: %+v", p)
			}
			if (p.Image == a || p.Image == b) && (p.Action != "build" || !strings.HasPrefix(p.Reason, "base changed")) {
				t.Errorf("plan of %s: %+v", p.Image, p)
			}
			if p.Image == n.minimal() && p.Action != "none" {
				t.Errorf("plan of %s: %+v", p.Image, p)
			}
		}

		start := time.Now()
		rep, _ := n.site.Sync(ctx, site.SyncOptions{})
		t.Logf("cascade sync: %s", time.Since(start).Round(100*time.Millisecond))
		logBuilds(t, "cascade", rep)
		got := built(rep)
		if len(got) != 3 || got[0] != n.scipy() || !slices.Contains(got, a) || !slices.Contains(got, b) {
			t.Fatalf("built %v, want %s then %s and %s, once each", got, n.scipy(), a, b)
		}
		rep, _ = n.site.Sync(ctx, site.SyncOptions{})
		if got := built(rep); len(got) != 0 {
			t.Errorf("a second sync built %v", got)
		}
	})
}
