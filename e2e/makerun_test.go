//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestMakeRunSite is the first ten minutes of a new admin: the daemon
// started as `make run` starts it (examples/ of a fresh clone, its flags,
// the real engine, images built on nbhtest-jupyter2), the dashboard in a
// browser, a click on "Open a demo student": the student lands on the
// notebook UI's file browser through the front door, the notebook server
// answers, and the dashboard shows the container.
// Screenshots (desktop, phone) go to $NBH_ARTIFACTS.
func TestMakeRunSite(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	requireImage(t, cli, "nbhtest-jupyter2:latest", "bash testimages/jupyter/build.sh --gen 2")
	testenv.RequireBrowser(t)

	// This repository's committed state, in a repo of one commit (the
	// daemon's first fetch of the whole history takes a minute under the
	// race detector): its path is in the source label of every image the
	// daemon builds, which tells them from those of anyone else's `make run`.
	clone := filepath.Join(t.TempDir(), "nbh-sync")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", clone},
		{"-C", "..", "archive", "-o", clone + "/head.tar", "HEAD"},
		{"-C", clone, "config", "user.email", "nbhtest@example.org"},
		{"-C", clone, "config", "user.name", "nbhtest"},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	for _, c := range [][]string{{"tar", "-xf", "head.tar"}, {"rm", "head.tar"}, {"git", "add", "-A"}, {"git", "commit", "-qm", "nbh-sync at HEAD"}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = clone
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	var root string
	t.Cleanup(func() { // after the daemon is killed (cleanups run last first)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", containers.LabelSite+"="+root))})
		for _, c := range cs {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
		// The site's images carry its name (root); a build cut short may
		// carry only its source.
		testenv.RemoveImagesWhere(cli, func(l map[string]string) bool {
			return l[imageref.LabelSite] == root || strings.Contains(l[images.LabelSource], clone)
		})
	})

	student := "nbhtest-" + fjtest.Suffix()
	d := newDaemon(t, filepath.Join(clone, "examples"), os.Getenv("DOCKER_HOST"))
	root = d.root
	door := freeAddr(t)
	// The flags of the Makefile's run target, on free ports.
	d.runFlags = []string{"--api-token-file", d.tokenFile(), "--listen", d.addr, "--proxy-listen", door, "--demo=" + student}
	start := time.Now()
	d.start()
	// The first pass fetches the repo and builds the three images: a
	// minute on a quiet machine, far more on a busy one; a pull that fails
	// is retried.
	testenv.Eventually(t, 15*time.Minute, "the demo's images built", func() (bool, string) {
		st, err := d.status(t.Context())
		if err != nil || len(st.Images) == 0 {
			return false, fmt.Sprint("no config yet: ", err, st.Errors)
		}
		for _, im := range st.Images {
			if im.Failed != nil {
				t.Fatalf("image %s failed to build: %s", im.Name, im.Failed.Error)
			}
			if im.BuildKey == "" {
				return false, im.Name + " not built yet"
			}
		}
		return true, ""
	})
	t.Logf("images built %s after the start", time.Since(start).Round(time.Second))
	browser := testenv.Browser(t, 10*time.Minute)
	st := d.mustStatus()
	// The dashboard says which base the core image is built on.
	if from := imageView(st, "nbhosting/minimal-notebook").From; from != "nbhtest-jupyter2:latest" {
		t.Errorf("core image built on %q, want nbhtest-jupyter2:latest", from)
	}

	demo := `button.demo-open[data-course="demo"]`
	if err := chromedp.Do(browser,
		chromedp.EmulateViewport(1280, 900),
		testenv.Navigate(d.url("/")),
		chromedp.WaitVisible(chromedp.CSS(demo)),
		chromedp.Click(chromedp.CSS(demo)),
	); err != nil {
		t.Fatalf("dashboard, demo action: %v", err)
	}
	// The page starts the server, then goes to the launch URL: ticket,
	// cookie, the student's server behind the front door.
	prefix := "http://" + door + "/u/demo/" + student + "/"
	testenv.Eventually(t, 2*time.Minute, "the browser at the demo student's server", func() (bool, string) {
		loc, err := chromedp.Run(browser, chromedp.Location())
		if msg, _ := chromedp.Run(browser, chromedp.Evaluate[string](`(document.querySelector(".demo-msg") || {}).textContent || ""`)); msg != "" && !strings.Contains(msg, "starting") {
			t.Fatalf("the demo action failed: %s", msg)
		}
		return err == nil && strings.HasPrefix(loc, prefix) && !strings.Contains(loc, "nbh-ticket"), fmt.Sprint(loc, err)
	})
	// The student lands on a notebook UI (not on a bare server's page):
	// its file browser, with her own copy of the course.s notebooks.
	if err := testenv.Visible(browser, t, `#notebook_list a[href$="/notebooks/hello.ipynb"]`, 2*time.Minute, 3); err != nil {
		t.Fatalf("the demo student's page is no file browser listing her copy of the course: %v", err)
	}

	// The notebook server answers the browser through the front door: its
	// contents API lists the course's files at the top of the file browser
	// (the student's own copy; .nbhosting/ stays out), its kernel specs a
	// kernel.
	answer, err := chromedp.Run(browser, chromedp.Evaluate[string](`Promise.all([
		fetch("`+prefix+`api/contents/").then(r => r.json()).then(j => (j.content || []).map(c => c.name).sort().join(",")),
		fetch("`+prefix+`api/kernelspecs").then(r => r.json()).then(j => j.default || "none")
	]).then(a => a.join(" | "))`, chromedp.EvalAwaitPromise))
	if err != nil || answer != "README.md,hello.ipynb | python3" {
		t.Fatalf("the notebook server through the front door: %q, %v; want the course files and a python3 kernel", answer, err)
	}

	// The dashboard follows: the demo course has a running container.
	card := `article.course[data-course="demo"] .rollout`
	if err := chromedp.Do(browser, testenv.Navigate(d.url("/")), chromedp.WaitVisible(chromedp.CSS(card))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(card)))
	if err != nil || !strings.Contains(text, "1 running") {
		t.Errorf("demo card says %q, %v; want its running container", text, err)
	}
	desktop, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(browser,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(card)),
	); err != nil {
		t.Fatal(err)
	}
	phone, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.ArtifactDir(t)
	for name, png := range map[string][]byte{"make-run-desktop.png": desktop, "make-run-phone.png": phone} {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", filepath.Join(dir, name), len(png))
	}
}
