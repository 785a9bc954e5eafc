package spawn

import (
	"fmt"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/manifest"
)

// BenchmarkSpawnVsDockerRun times, in each iteration and in alternating
// order, (a) Spawn of a new student until the server answers and (b) the
// docker CLI's `docker run -d` of the same image with the same settings
// plus the same readiness wait (containers.WaitReady). It reports both and
// their ratio.
func BenchmarkSpawnVsDockerRun(b *testing.B) {
	fc := benchenv.NewFakeCourse(b, "ctr", "/{port}/")
	cli, name, image, root, co, m := fc.Cli, fc.Course.Name, fc.Image, fc.Root, fc.Course, fc.Manager
	ctx := b.Context()

	spawnOne := func(i int) time.Duration {
		start := time.Now()
		if _, err := m.Spawn(ctx, co, fmt.Sprintf("s%d", i), containers.SpawnOptions{Root: root, UID: "1000"}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	runOne := func(i int) time.Duration {
		start := time.Now()
		l, err := testenv.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		p := strconv.Itoa(l)
		dir := filepath.Join(root, "students", fmt.Sprintf("r%d", i), name)
		out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", fmt.Sprintf("%s-x-r%d", name, i),
			"-p", "127.0.0.1:"+p+":8888", "-v", dir+":/home/jovyan/work", "--memory", "64m",
			image, "/fakejupyter", "--port=8888", "--base-url=/"+p+"/").CombinedOutput()
		if err != nil {
			b.Fatalf("docker run: %v\n%s", err, out)
		}
		if err := containers.WaitReady(ctx, containers.ServerURL("127.0.0.1", l, naming.BasePath(l)), time.Minute); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	cleanup := func() {
		cs, _ := m.List(ctx, nil)
		for _, c := range cs {
			if c.Course == name {
				_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
	}

	var spawnT, runT time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			spawnT += spawnOne(i)
			runT += runOne(i)
		} else {
			runT += runOne(i)
			spawnT += spawnOne(i)
		}
		b.StopTimer()
		cleanup()
		b.StartTimer()
		i++
	}
	b.ReportMetric(float64(spawnT.Milliseconds())/float64(i), "spawn-ms/op")
	b.ReportMetric(float64(runT.Milliseconds())/float64(i), "dockerrun-ms/op")
	b.ReportMetric(float64(spawnT)/float64(runT), "ratio")
}

// BenchmarkReturningStudent times the spawn most students make in a term:
// their container exists but is stopped. In each iteration, in alternating
// order and on the same container (stopped again before each side),
// (a) Spawn until the server answers and (b) `docker start` of it plus the
// same readiness wait (containers.WaitReady). It reports both and their
// ratio.
func BenchmarkReturningStudent(b *testing.B) {
	cli := fjtest.RequireDocker(b)
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("the baseline needs the docker CLI")
	}
	name := "nbhtest-ctr-" + fjtest.Suffix()
	fjtest.Build(b, cli, fjtest.Binary(b), name+":latest")
	fjtest.CleanupContainers(b, cli, name)
	root := b.TempDir()
	co := manifest.Course{Name: name, Container: manifest.Container{
		Port: 8888, Memory: 64 << 20,
		Command: []string{"/fakejupyter", "--port=8888", "--base-url=/{port}/"},
		Mounts:  []string{"{root}/students/{student}/{course}:/home/jovyan/work"},
	}}
	m := containers.New(containers.NewDocker(cli), nil, nil)
	ctx := b.Context()
	first, err := m.Spawn(ctx, co, "back", containers.SpawnOptions{Root: root, UID: "1000"})
	if err != nil {
		b.Fatal(err)
	}
	stop := func() {
		timeout := 0
		if err := cli.ContainerStop(ctx, first.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			b.Fatal(err)
		}
	}
	spawnOne := func() time.Duration {
		stop()
		start := time.Now()
		res, err := m.Spawn(ctx, co, "back", containers.SpawnOptions{Root: root, UID: "1000"})
		if err != nil {
			b.Fatal(err)
		}
		if res.State != containers.Started || res.ID != first.ID {
			b.Fatalf("spawn of a stopped container: state %v, id %s; want the same container started", res.State, res.ID)
		}
		return time.Since(start)
	}
	startOne := func() time.Duration {
		stop()
		start := time.Now()
		if out, err := exec.CommandContext(ctx, "docker", "start", first.ID).CombinedOutput(); err != nil {
			b.Fatalf("docker start: %v\n%s", err, out)
		}
		if err := containers.WaitReady(ctx, first.URL, time.Minute); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}

	var spawnT, startT time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			spawnT += spawnOne()
			startT += startOne()
		} else {
			startT += startOne()
			spawnT += spawnOne()
		}
		i++
	}
	b.ReportMetric(float64(spawnT.Milliseconds())/float64(i), "spawn-ms/op")
	b.ReportMetric(float64(startT.Milliseconds())/float64(i), "dockerstart-ms/op")
	b.ReportMetric(float64(spawnT)/float64(startT), "ratio")
}
