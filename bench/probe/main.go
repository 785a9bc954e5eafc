// Command probe measures one activity probe round over many running Jupyter
// servers, the way a container pass makes it (activity.Prober.Round: HTTP
// probes, each container's CPU time, the activity memory read and written),
// side by side with the round before CPU and memory existed (the same
// Prober's HTTP probes alone). See ../README.md.
//
//	go run ./bench/probe -n 1000 -rounds 5 -engine 10
//
// The servers are in-process fake Jupyter servers (internal/fakejupyter),
// one listener each, every one with an idle kernel, so each probe makes the
// two requests a real idle server costs (kernels, then terminals). CPU time
// comes from cgroup v2 cpu.stat files laid out as Docker's systemd driver
// lays them out, in a temporary directory. With -engine M > 0, M real
// containers are started too (image -image, named nbhtest-bprobe-*,
// removed at the end) and two more rounds are timed, reading CPU time for
// the n targets from those M containers in turn: from their real cgroups on
// this host, and through the engine's one-shot stats (one engine call per
// target), which is what a site whose engine is not local pays.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
)

func main() {
	n := flag.Int("n", 1000, "running servers probed per round")
	rounds := flag.Int("rounds", 5, "timed rounds of each variant, interleaved")
	engine := flag.Int("engine", 10, "real containers for the engine and real-cgroup rounds (0: skip them)")
	img := flag.String("image", "nbhtest-jupyter:latest", "image of those containers (must have sleep)")
	benchenv.Main("bench/probe", func(ctx context.Context) error {
		return run(ctx, max(*n, 1), max(*rounds, 1), max(*engine, 0), *img)
	})
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// variant is one way to make a probe round.
type variant struct {
	name  string
	round func(ctx context.Context) (engineCalls int, err error)
	times []time.Duration
	calls int
}

func run(ctx context.Context, n, rounds, engine int, img string) error {
	tmp, err := os.MkdirTemp("", "nbh-bprobe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cgroups := filepath.Join(tmp, "cgroup")
	started := time.Now().Add(-time.Hour)
	last := time.Now().Add(-20 * time.Minute).UTC()
	targets := make([]activity.Target, n)
	for i := range targets {
		id, token := randomID(), randomID()[:32]
		fj := fakejupyter.New("/", token, []fakejupyter.Kernel{{ID: randomID()[:36], Name: "python3", LastActivity: last, ExecutionState: "idle"}})
		srv := httptest.NewServer(fj)
		defer srv.Close()
		targets[i] = activity.Target{ID: id, URL: srv.URL + "/", Token: token, StartedAt: started}
		dir := filepath.Join(cgroups, "system.slice", "docker-"+id+".scope")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		stat := fmt.Sprintf("usage_usec %d\nuser_usec 1\nsystem_usec 1\n", 1000000+i)
		if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte(stat), 0o644); err != nil {
			return err
		}
	}
	check := func(res map[string]activity.Result, want int) error {
		if len(res) != want {
			return fmt.Errorf("%d results for %d servers", len(res), want)
		}
		for id, r := range res {
			if r.State != activity.Answered || r.Kernels != 1 {
				return fmt.Errorf("server %s: %+v", id, r)
			}
		}
		return nil
	}

	today := activity.New()
	withCPU := activity.New()
	withCPU.CPU = &activity.LocalFirst{Local: activity.Cgroup{Root: cgroups}}
	memFile := filepath.Join(tmp, "state", "activity.json")
	roundWith := func(p *activity.Prober, ts []activity.Target, memFile string) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			res, mem, err := p.Round(ctx, ts, memFile, 0)
			if err != nil {
				return 0, err
			}
			if err := mem.Save(memFile); err != nil {
				return 0, err
			}
			calls := 0
			for _, r := range res {
				if r.CPUSample == nil {
					return 0, fmt.Errorf("no CPU time: %s", r.CPUErr)
				}
			}
			for _, t := range ts {
				if res[t.ID].CPUEngineCall {
					calls++
				}
			}
			return calls, check(res, len(uniqueIDs(ts)))
		}
	}
	vs := []*variant{
		{name: "HTTP only (the round before CPU and memory)", round: func(ctx context.Context) (int, error) {
			return 0, check(today.Probe(ctx, targets), n)
		}},
		{name: "Round: HTTP + CPU from cgroup v2 files + memory", round: roundWith(withCPU, targets, memFile)},
	}

	var real []string
	if engine > 0 {
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return err
		}
		defer cli.Close()
		real, err = startContainers(ctx, cli, engine, img)
		defer removeContainers(cli, real)
		if err != nil {
			return err
		}
		// The same n servers, their CPU time read from the real containers
		// in turn (so n reads per round).
		cycled := slices.Clone(targets)
		for i := range cycled {
			cycled[i].ID = real[i%len(real)]
		}
		local := activity.New()
		local.CPU = &activity.LocalFirst{Local: activity.Cgroup{}}
		viaEngine := activity.New()
		viaEngine.CPU = &activity.LocalFirst{Local: activity.Cgroup{Root: filepath.Join(tmp, "none")}, Engine: containers.NewDocker(cli)}
		if _, _, err := local.CPU.Read(ctx, real[0]); err != nil {
			fmt.Printf("(no local cgroup for the real containers: %v; that round is skipped)\n", err)
		} else {
			vs = append(vs, &variant{name: fmt.Sprintf("Round: CPU from the real cgroups of %d containers", len(real)),
				round: roundWith(local, cycled, filepath.Join(tmp, "state", "local.json"))})
		}
		vs = append(vs, &variant{name: fmt.Sprintf("Round: CPU via engine one-shot stats (%d containers)", len(real)),
			round: roundWith(viaEngine, cycled, filepath.Join(tmp, "state", "engine.json"))})
	}

	// One untimed round each: connections made, files cached.
	for _, v := range vs {
		if _, err := v.round(ctx); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}
	for range rounds {
		for _, v := range vs {
			t0 := time.Now()
			calls, err := v.round(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			v.times = append(v.times, time.Since(t0))
			v.calls = calls
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	fmt.Printf("\none probe round over %d running servers (fake Jupyter, %d HTTP requests each), concurrency %d; median of %d rounds\n",
		n, 2, today.Concurrency, rounds)
	fmt.Printf("%-58s %10s %12s\n", "", "wall", "engine calls")
	base := median(vs[0].times)
	for _, v := range vs {
		fmt.Printf("%-58s %10s %12d   x%.2f\n", v.name, median(v.times).Round(100*time.Microsecond), v.calls, float64(median(v.times))/float64(base))
	}
	line := fmt.Sprintf("RESULT probe n=%d today=%s cpu=%s ratio=%.3f", n, base.Round(time.Millisecond), median(vs[1].times).Round(time.Millisecond),
		float64(median(vs[1].times))/float64(base))
	if engine > 0 {
		e := vs[len(vs)-1]
		line += fmt.Sprintf(" engine=%s engine_ratio=%.3f engine_calls=%d", median(e.times).Round(time.Millisecond), float64(median(e.times))/float64(base), e.calls)
	}
	fmt.Println(line)
	return nil
}

func uniqueIDs(ts []activity.Target) map[string]bool {
	out := map[string]bool{}
	for _, t := range ts {
		out[t.ID] = true
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// startContainers runs m containers that only sleep, returning their IDs
// (also those made before a failure, for removal).
func startContainers(ctx context.Context, cli *client.Client, m int, img string) ([]string, error) {
	var ids []string
	suffix := randomID()[:8]
	for i := range m {
		c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"sleep", "3600"},
			Labels: map[string]string{"org.nbhosting.bench": "probe"}}, &container.HostConfig{}, nil, nil,
			fmt.Sprintf("nbhtest-bprobe-%s-%d", suffix, i))
		if err != nil {
			return ids, fmt.Errorf("create a container of %s: %w", img, err)
		}
		ids = append(ids, c.ID)
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return ids, fmt.Errorf("start %s: %w", c.ID, err)
		}
	}
	return ids, nil
}

func removeContainers(cli *client.Client, ids []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for _, id := range ids {
		errs = append(errs, cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "bench/probe: cleanup:", err)
	}
}
