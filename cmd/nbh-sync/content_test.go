package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// TestCLICourseContentNeverBlocks: a course with no Dockerfile and one
// whose build fails sit beside one that builds. validate, plan, build,
// sync and status agree: the config applies, the good course is built,
// each failure is reported on its course — also by a later process.
func TestCLICourseContentNeverBlocks(t *testing.T) {
	cli := requireDocker(t)
	b := make([]byte, 4)
	rand.Read(b)
	pre := "nbhtest-content-" + hex.EncodeToString(b)
	good, empty, broken := pre+"-good", pre+"-empty", pre+"-broken"
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		for _, name := range []string{good, empty, broken} {
			imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "org.nbhosting.image="+name))})
			for _, im := range imgs {
				cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			}
		}
	})
	cfg, root := t.TempDir(), t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\ncourses:\n"+
		"  "+good+":\n    repo: .\n    path: good\n"+
		"  "+empty+":\n    repo: .\n    path: empty\n"+
		"  "+broken+":\n    repo: .\n    path: broken\n")
	write(t, filepath.Join(cfg, "good/.nbhosting/Dockerfile"), "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n")
	write(t, filepath.Join(cfg, "empty/lesson.ipynb"), "{}\n")
	write(t, filepath.Join(cfg, "broken/nbhosting/Dockerfile"), "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY not-in-the-folder /x\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "site")

	nbh := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(t, append([]string{"--api", "none", "--config", cfg, "--root", root, "--log-level", "error"}, args...)...)
	}
	type planDoc struct {
		Config struct{ Change string }
		Builds []struct{ Image, Action, Reason string }
		Errors []string
	}
	planOf := func() planDoc {
		t.Helper()
		code, out, errOut := nbh("plan", "--json")
		var p planDoc
		if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 {
			t.Fatalf("plan --json: exit %d %v\n%s%s", code, err, out, errOut)
		}
		return p
	}
	action := func(p planDoc, image string) string {
		for _, b := range p.Builds {
			if b.Image == image {
				return b.Action + ": " + b.Reason
			}
		}
		return ""
	}

	if code, out, _ := nbh("validate"); code != 0 || !strings.Contains(out, "warning: courses."+empty+": image "+empty+" cannot be built") {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	p := planOf()
	if p.Config.Change != "apply" || !strings.HasPrefix(action(p, good), "build") || !strings.HasPrefix(action(p, empty), "error: ") {
		t.Fatalf("first plan: %+v", p)
	}
	// build of the course without a Dockerfile: that image's error, not
	// a rejected config.
	code, out, errOut := nbh("build", empty)
	if code != 1 || !strings.Contains(errOut, "no Dockerfile at") || strings.Contains(out+errOut, "rejected") {
		t.Fatalf("build %s: exit %d\n%s%s", empty, code, out, errOut)
	}
	code, out, errOut = nbh("sync")
	if code != 1 || strings.Contains(out+errOut, "rejected") || !strings.Contains(errOut, "image "+broken+": build") {
		t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
	}

	// A later process sees the failures: status, plan (held), history.
	code, out, _ = nbh("status", "--json")
	var st struct {
		Courses []struct {
			Name       string
			BuildKey   string `json:"build_key"`
			ImageError string `json:"image_error"`
		}
		Images []struct {
			Name   string
			Failed *struct {
				Stage   string
				LogTail string `json:"log_tail"`
			} `json:"failed"`
		}
		Builds []struct{ Image, Result string }
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json: exit %d %v\n%s", code, err, out)
	}
	for _, co := range st.Courses {
		switch co.Name {
		case good:
			if co.BuildKey == "" || co.ImageError != "" {
				t.Errorf("status of %s: %+v", co.Name, co)
			}
		default:
			if co.ImageError == "" {
				t.Errorf("status of %s: no image error", co.Name)
			}
		}
	}
	for _, im := range st.Images {
		switch {
		case im.Name == broken && (im.Failed == nil || im.Failed.Stage != "build" || !strings.Contains(im.Failed.LogTail, "not-in-the-folder")):
			t.Errorf("status of %s: %+v", im.Name, im.Failed)
		case im.Name == empty && (im.Failed == nil || im.Failed.Stage != "context"):
			t.Errorf("status of %s: %+v", im.Name, im.Failed)
		}
	}
	failedBuilds := 0
	for _, bd := range st.Builds {
		if bd.Image == broken && bd.Result == "failed" {
			failedBuilds++
		}
	}
	if failedBuilds != 1 {
		t.Errorf("status builds: %+v, want the failed build of %s", st.Builds, broken)
	}
	if code, out, _ = nbh("status"); code != 0 || !strings.Contains(out, "not-in-the-folder") || !strings.Contains(out, good) {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	p = planOf()
	if !strings.HasPrefix(action(p, good), "none") || !strings.HasPrefix(action(p, broken), "hold: ") || !strings.HasPrefix(action(p, empty), "error") {
		t.Errorf("plan after sync: %+v", p)
	}
	if code, out, _ = nbh("why", broken); code != 0 || !strings.Contains(out, "Dockerfile: course "+broken+": nbhosting/Dockerfile") {
		t.Errorf("why: exit %d\n%s", code, out)
	}
	if code, out, _ = nbh("history", "--kind", "build", "--course", broken); code != 0 || !strings.Contains(out, "failed") {
		t.Errorf("history: exit %d\n%s", code, out)
	}
}

// plan --json prints its document even when there is nothing to plan on:
// here the only config commit is rejected.
func TestCLIPlanJSONWithoutConfig(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\ncourses:\n  x:\n    repo: .\n    idle: 2 hours\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "typo")
	code, out, _ := runCLI(t, "--api", "none", "--config", cfg, "--root", root, "--log-level", "error", "plan", "--json")
	var p struct {
		Config struct {
			Change   string
			Rejected *struct{ Problems []struct{ Message string } }
		}
		Builds []any
		Errors []string
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 1 {
		t.Fatalf("plan --json: exit %d, %v\n%q", code, err, out)
	}
	if p.Config.Change != "rejected" || p.Config.Rejected == nil || len(p.Errors) == 0 || p.Builds == nil {
		t.Errorf("plan document: %+v", p)
	}
}

// validate and the daemon's config loader take the same decision on the
// same commit: an admin Dockerfile that breaks the lint is the config
// repo's own problem, so validate fails it and plan reports it rejected.
func TestCLIValidateAgreesWithPlan(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\nimages:\n  core:\n    dockerfile: images/core.Dockerfile\ncourses:\n  x:\n    repo: .\n    path: x\n    image: core\n")
	write(t, filepath.Join(cfg, "images/core.Dockerfile"), "FROM debian:12@sha256:0123\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nUSER jovyan\n")
	write(t, filepath.Join(cfg, "x/lesson.ipynb"), "{}\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "site")
	const problem = "images/core.Dockerfile:3: USER jovyan: the image must end as root"
	code, out, _ := runCLI(t, "validate", cfg)
	if code != 1 || !strings.Contains(out, problem) {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "--api", "none", "--config", cfg, "--root", root, "--log-level", "error", "plan", "--json")
	if code != 1 || !strings.Contains(out, `"change": "rejected"`) || !strings.Contains(out, problem) {
		t.Fatalf("plan: exit %d\n%s", code, out)
	}
}
