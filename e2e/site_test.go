//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
)

// Kernels the fake Jupyter server reports (FAKE_KERNELS): one idle since
// long ago (its server is idle at once), or one busy (never idle).
const (
	idleKernels = `[{"id":"k","name":"python3","last_activity":"2020-01-01T00:00:00Z","execution_state":"idle","connections":0}]`
	busyKernels = `[{"id":"k","name":"python3","last_activity":"2020-01-01T00:00:00Z","execution_state":"busy","connections":1}]`
)

// fakeSite is a small site for the fault tests: course images built FROM
// a scratch image holding the fake Jupyter server (a few MB, quick to
// build even on fuse-overlayfs), repos over HTTP.
type fakeSite struct {
	t      *testing.T
	cli    *client.Client
	prefix string
	base   string // the base image, prefix-base:v1
	git    *gitServer
	config *repo
}

func newFakeSite(t *testing.T) *fakeSite {
	t.Helper()
	cli := requireDocker(t)
	s := &fakeSite{t: t, cli: cli, prefix: "nbhtest-e2e-" + fjtest.Suffix()}
	cleanupEngine(t, cli, s.prefix)
	s.base = s.prefix + "-base:v1"
	fjtest.Build(t, cli, fjtest.Binary(t), s.base)
	s.git = newGitServer(t)
	return s
}

// imageRepo makes a course repo named name whose docker-image/ builds a
// course image on the base image; marker tells versions apart. kernels,
// when set, are the kernels its servers start with (an ENV of the image:
// courses.yaml refuses braces in container settings, they look like
// placeholders).
func (s *fakeSite) imageRepo(name, marker, kernels string) *repo {
	df := "FROM " + s.base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY marker.txt /marker.txt\n"
	if kernels != "" {
		df += "ENV FAKE_KERNELS='" + kernels + "'\n"
	}
	return s.git.newRepo(s.t, name, map[string]string{
		"docker-image/nbhosting.Dockerfile": df,
		"docker-image/marker.txt":           marker + "\n",
		"notebooks/intro.md":                "# " + name + "\n",
	})
}

// fakeCourse is one course of a fakeSite's courses.yaml.
type fakeCourse struct {
	name, repo string
	image      string // "" for the course's own
}

// yaml is the courses.yaml of courses, with pulls and passes every second.
func (s *fakeSite) yaml(courses ...fakeCourse) string {
	var b strings.Builder
	b.WriteString(`version: 1
defaults:
  idle: 1m
  container:
    command: [/fakejupyter, --port=8888, "--base-url=/{port}/", "--token=tok-{student}"]
    token: "tok-{student}"
    mounts: ["{root}/students/{student}/{course}:/home/jovyan/work"]
build:
  keep: 2
schedules:
  pull: "@every 1s"
  reconcile: "@every 1s"
courses:
`)
	for _, c := range courses {
		fmt.Fprintf(&b, "  %s:\n    repo: %s\n", c.name, c.repo)
		if c.image != "" {
			fmt.Fprintf(&b, "    image: %s\n", c.image)
		}
	}
	return b.String()
}

// start makes the config repo of courses and starts a daemon on it
// through an engine proxy.
func (s *fakeSite) start(courses ...fakeCourse) (*daemon, *engineProxy) {
	s.t.Helper()
	s.config = s.git.newRepo(s.t, "config", map[string]string{"courses.yaml": s.yaml(courses...)})
	proxy := newEngineProxy(s.t, s.prefix)
	d := newDaemon(s.t, s.config.url, proxy.host())
	d.start()
	return d, proxy
}

// setKernels replaces the kernels of a fake server (its control endpoint).
func setKernels(t *testing.T, sp api.SpawnResult, token, kernels string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, sp.URL+"fake/kernels", strings.NewReader(kernels))
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("set kernels: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("set kernels: %s", resp.Status)
	}
}
