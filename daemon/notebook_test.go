package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestSpawnPathOpensNotebook: courses on both generations of real Jupyter
// images, with nothing about containers in courses.yaml (nbh-sync's
// default command, ui: auto). Through the front door a student lands on
// the notebook UI's file browser, and `nbh-sync spawn --path` gives a
// launch URL that opens that notebook, where a cell runs and shows its
// output. Screenshots of the notebook (desktop, phone) go to
// $NBH_ARTIFACTS.
func TestSpawnPathOpensNotebook(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	testenv.RequireBrowser(t)
	gens := map[string]string{"gen1": jupytertest.Image, "gen2": jupytertest.Image2}
	for _, ref := range gens {
		jupytertest.RequireImage(t, cli, ref)
	}
	bin := testenv.DaemonBinary(t)
	suffix := randHex(4)
	course := func(gen string) string { return testPrefix + gen + "-" + suffix }
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, course("gen1"), course("gen2")) })
	for gen := range gens {
		cleanupContainers(t, cli, course(gen))
	}

	dir := t.TempDir()
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	yaml := "version: 1\nschedules:\n  pull: \"@every 1h\"\ncourses:\n"
	files := map[string]string{}
	for gen, ref := range gens {
		yaml += fmt.Sprintf("  %s:\n    repo: .\n    path: %s\n", course(gen), gen)
		files[gen+"/docker-image/nbhosting.Dockerfile"] = "FROM " + ref + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"
	}
	files["courses.yaml"] = yaml
	cfg.commit(t, files, "site")

	root := filepath.Join(dir, "root")
	p, tokenFile, _ := startFrontDoorDaemon(t, cfg.dir, root)
	testenv.WaitFor(t, 5*time.Minute, "both images built", func() bool {
		var st api.Status
		if p.getJSON("/api/status", &st) != http.StatusOK || len(st.Images) != 2 {
			return false
		}
		for _, im := range st.Images {
			if im.Failed != nil {
				t.Fatalf("image %s: %s", im.Name, im.Failed.Error)
			}
			if im.BuildKey == "" {
				return false
			}
		}
		return true
	})

	// The browser's budget covers both generations' pages, on a machine
	// that CI keeps busy with other suites: a bound, not a wait.
	browser := testenv.Browser(t, 25*time.Minute)
	for _, gen := range []string{"gen1", "gen2"} {
		t.Run(gen, func(t *testing.T) {
			// A tab of its own: leaving a notebook with a cell run asks
			// "leave the page?", and nobody answers.
			browser, cancel := chromedp.NewContext(browser)
			defer cancel()
			c := course(gen)
			// The student's notebook, in their work folder (a workspace
			// will put the course's own there).
			work := filepath.Join(root, "students", "alice", c)
			writeNotebook(t, work, "week 1/lesson.ipynb", "print(6 * 7)")

			// Landing: the front door's launch URL shows the file browser.
			code, body := p.post("/api/spawn", fmt.Appendf(nil, `{"course":%q,"student":"alice","uid":1000}`, c),
				map[string]string{"Authorization": "Bearer api-tok"})
			var res api.SpawnResult
			if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
				t.Fatalf("spawn: %d %s", code, body)
			}
			if err := chromedp.Do(browser, chromedp.EmulateViewport(1280, 900)); err != nil {
				t.Fatal(err)
			}
			if err := testenv.Land(browser, t, res.LaunchURL, `#notebook_list a[href$="/tree/week%201"]`, 2*time.Minute, 3); err != nil {
				t.Fatalf("the launch did not land on the file browser listing week 1: %v", err)
			}

			// The deep link, by the command line through the daemon.
			out, err := exec.Command(bin, "--root", root, "--api-token-file", tokenFile,
				"spawn", c, "alice", "--uid", "1000", "--path", "week 1/lesson.ipynb", "--json").Output()
			var sp struct {
				Open, URL string
				LaunchURL string `json:"launch_url"`
			}
			if err != nil || json.Unmarshal(out, &sp) != nil {
				t.Fatalf("spawn --path: %v\n%s", err, out)
			}
			wantOpen := "notebooks/week%201/lesson.ipynb"
			if sp.Open != wantOpen || !strings.Contains(sp.LaunchURL, sp.URL[strings.Index(sp.URL, "/"+strconv.Itoa(res.Port)+"/"):]+wantOpen+"?nbh-ticket=") {
				t.Fatalf("spawn --path: open %q, launch_url %q; want %s under the server's prefix", sp.Open, sp.LaunchURL, wantOpen)
			}
			if err := chromedp.Do(browser, testenv.Navigate(sp.LaunchURL)); err != nil {
				t.Fatal(err)
			}
			if err := testenv.Until(browser, t, testenv.NotebookKernelConnected, 2*time.Minute, 3); err != nil {
				t.Fatalf("the notebook's kernel did not connect: %v", err)
			}
			if name, err := chromedp.Run(browser, chromedp.Evaluate[string](`Jupyter.notebook.notebook_path`)); err != nil || name != "week 1/lesson.ipynb" {
				t.Errorf("the page opened %q, %v; want week 1/lesson.ipynb", name, err)
			}
			if _, err := chromedp.Run(browser, chromedp.Evaluate[any](`Jupyter.notebook.execute_all_cells()`)); err != nil {
				t.Fatal(err)
			}
			out2, err := chromedp.Run(browser, chromedp.Poll[string](`document.querySelector(".output_area pre")?.textContent`, testenv.SlowPoll))
			if err != nil || strings.TrimSpace(out2) != "42" {
				t.Fatalf("the cell printed %q, %v; want 42", out2, err)
			}
			// Nothing stands between the student and the notebook (the UI
			// opens a dialog when, say, MathJax is missing from the image).
			if dialog, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector(".modal.in .modal-title")?.textContent ?? ""`)); err != nil || dialog != "" {
				t.Errorf("a dialog is open over the notebook: %q, %v", dialog, err)
			}
			if gen == "gen2" {
				screenshots(t, browser, "notebook")
			}
		})
	}
}

// writeNotebook writes a notebook of one code cell at rel in work, which
// it makes, all of it the student's (uid 1000, as the test's servers run):
// they may save it, as in their own work.
func writeNotebook(t *testing.T, work, rel, source string) {
	t.Helper()
	nb := map[string]any{"nbformat": 4, "nbformat_minor": 4, "metadata": map[string]any{},
		"cells": []any{map[string]any{"cell_type": "code", "source": source,
			"metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil}}}
	b, err := json.Marshal(nb)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(work, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for p := path; p != filepath.Dir(work); p = filepath.Dir(p) {
		if err := os.Chown(p, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
}

// screenshots saves the page as a desktop and a phone see it.
func screenshots(t *testing.T, browser context.Context, name string) {
	t.Helper()
	desktop, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(browser, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	phone, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.ArtifactDir(t)
	for file, png := range map[string][]byte{name + "-desktop.png": desktop, name + "-phone.png": phone} {
		if err := os.WriteFile(filepath.Join(dir, file), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", filepath.Join(dir, file))
	}
}
