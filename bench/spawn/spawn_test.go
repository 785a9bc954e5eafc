package spawn

import (
	"fmt"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
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
		if err := containers.WaitReady(ctx, containers.ServerURL("127.0.0.1", l, containers.BasePath(l)), time.Minute); err != nil {
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
