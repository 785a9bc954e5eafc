//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/docker/docker/client"

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
// course image on the base image; marker tells versions apart.
func (s *fakeSite) imageRepo(name, marker string) *repo {
	return s.git.newRepo(s.t, name, map[string]string{
		"docker-image/nbhosting.Dockerfile": "FROM " + s.base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY marker.txt /marker.txt\n",
		"docker-image/marker.txt":           marker + "\n",
		"notebooks/intro.md":                "# " + name + "\n",
	})
}

// fakeCourse is one course of a fakeSite's courses.yaml.
type fakeCourse struct {
	name, repo string
	image      string // "" for the course's own
	kernels    string // FAKE_KERNELS of its servers
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
		if c.kernels != "" {
			fmt.Fprintf(&b, "    container:\n      env: {FAKE_KERNELS: '%s'}\n", c.kernels)
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
