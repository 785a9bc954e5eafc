package benchenv

import (
	"os/exec"
	"testing"

	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/manifest"
)

// FakeCourse is a course of fake Jupyter servers (a FROM-scratch image
// built for the run) on the real engine: what the spawn benchmarks start,
// through the product and, for their baseline, through the docker CLI.
type FakeCourse struct {
	Cli     *client.Client
	Image   string
	Root    string
	Course  manifest.Course
	Manager *containers.Manager
}

// NewFakeCourse builds the image nbhtest-<kind>-<suffix>:latest and returns
// the course on it whose servers serve under baseURL (a --base-url value);
// the course's containers go when tb ends. Without the engine, or without
// the docker CLI the baseline needs, tb is skipped.
func NewFakeCourse(tb testing.TB, kind, baseURL string) FakeCourse {
	cli := fjtest.RequireDocker(tb)
	if _, err := exec.LookPath("docker"); err != nil {
		tb.Skip("the baseline needs the docker CLI")
	}
	name := "nbhtest-" + kind + "-" + fjtest.Suffix()
	img := fjtest.Build(tb, cli, fjtest.Binary(tb), name+":latest")
	fjtest.CleanupContainers(tb, cli, name)
	co := manifest.Course{Name: name, Container: manifest.Container{
		Port: 8888, Memory: 64 << 20,
		Command: []string{"/fakejupyter", "--port=8888", "--base-url=" + baseURL},
		Mounts:  []string{"{root}/students/{student}/{course}:/home/jovyan/work"},
	}}
	return FakeCourse{Cli: cli, Image: img, Root: tb.TempDir(), Course: co,
		Manager: containers.New(containers.NewDocker(cli), nil, nil)}
}
