// Command cmds times the read-only commands — plan, status, why, status
// --json — as whole processes, each side by side with one `docker ps -a
// --filter label=org.nbhosting.site=ROOT` of the same containers (also a
// process): the floor a command that lists the containers cannot go under.
// It also counts the engine API calls each command makes, through a
// counting proxy of the engine's socket. With a watchtower binary (-watchtower
// or on PATH) it times watchtower's monitor-only run over the same
// containers too: the peer issue 28 measures against. See bench/README.md
// (cmds).
//
//	go run ./bench/cmds -n "1000 10000" -runs 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
)

func main() {
	sizes := flag.String("n", "1000 10000", "container counts, ascending: containers are added to reach each")
	runs := flag.Int("runs", 3, "timed runs of each side, interleaved; the best of each is compared")
	workers := flag.Int("workers", 8, "concurrent engine calls while setting up and cleaning up")
	bin := flag.String("bin", "", "the nbh-sync binary (default: go build ./cmd/nbh-sync)")
	dir := flag.String("dir", "", "reuse the site a run with -keep left in DIR (its containers too)")
	keep := flag.Bool("keep", false, "leave the site and its containers for -dir (removal: docker rm -f of the prefix printed)")
	watchtower := flag.String("watchtower", "watchtower", "the watchtower binary timed beside the commands (skipped when not found; go build in a clone of containrrr/watchtower makes one)")
	benchenv.Main("bench/cmds", func(ctx context.Context) error {
		var ns []int
		for _, f := range strings.Fields(*sizes) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				return fmt.Errorf("-n %q: want counts", *sizes)
			}
			ns = append(ns, n)
		}
		wt, err := exec.LookPath(*watchtower)
		if err != nil {
			fmt.Printf("watchtower: %v: its rows are skipped\n", err)
			wt = ""
		}
		return run(ctx, ns, max(*runs, 1), max(*workers, 1), *bin, *dir, *keep, wt)
	})
}

// fixture is the site the commands read: a config repo whose one course
// lives in it (repo: ., so no network is involved), a data directory, and
// the course's containers, created and never started.
type fixture struct {
	prefix, dir, config, root, course string
}

func (f fixture) save() error {
	return os.WriteFile(filepath.Join(f.dir, "prefix"), []byte(f.prefix), 0o644)
}

func run(ctx context.Context, ns []int, runs, workers int, bin, reuse string, keep bool, watchtower string) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("the baseline needs the docker CLI on PATH")
	}
	cli, ver, err := benchenv.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	var f fixture
	if reuse != "" {
		b, err := os.ReadFile(filepath.Join(reuse, "prefix"))
		if err != nil {
			return fmt.Errorf("-dir %s: %w", reuse, err)
		}
		f = newFixture(strings.TrimSpace(string(b)), reuse)
	} else {
		prefix := benchenv.Prefix("cmds")
		tmp, err := os.MkdirTemp("", prefix)
		if err != nil {
			return err
		}
		f = newFixture(prefix, tmp)
	}
	if !keep {
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Minute)
			defer cancel()
			t0 := time.Now()
			removed := benchenv.Cleanup(cctx, cli, f.prefix, workers)
			// The sync's build is tagged in the site's repository
			// (nbh-HASH/IMAGE), not under the prefix.
			built, _ := cli.ImageList(cctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", images.LabelImage+"="+f.prefix+"-shared"))})
			for _, im := range built {
				_, _ = cli.ImageRemove(cctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			}
			os.RemoveAll(f.dir)
			fmt.Printf("cleanup: %d containers removed in %s\n", removed, time.Since(t0).Round(time.Millisecond))
		}()
	} else {
		defer fmt.Printf("kept: -dir %s (containers and images named %s*)\n", f.dir, f.prefix)
	}
	fmt.Printf("engine: Docker %s (API %s); site %s, course %s\n", ver.Version, ver.APIVersion, f.root, f.course)
	if reuse == "" {
		if err := f.setup(ctx); err != nil {
			return err
		}
	}
	if bin == "" {
		bin = filepath.Join(f.dir, "nbh-sync")
		fmt.Println("setup: building ./cmd/nbh-sync")
		gb := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/nbh-sync")
		gb.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := gb.CombinedOutput(); err != nil {
			return fmt.Errorf("build ./cmd/nbh-sync (run from the module root): %v\n%s", err, out)
		}
	}
	dummy := f.prefix + "-dummy:latest"
	if _, err := cli.ImageInspect(ctx, dummy); err != nil {
		if _, err := testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte("FROM scratch\nCOPY none /none\n")}, {Name: "none", Data: []byte("x")}}, dummy); err != nil {
			return err
		}
	}
	if reuse == "" {
		// A site that has run: its config applied, its image built (the
		// freeze window keeps the containers made below from any
		// retirement, should a sync run again).
		fmt.Println("setup: nbh-sync sync")
		if out, err := exec.CommandContext(ctx, bin, "sync", "--config", f.config, "--root", f.root).CombinedOutput(); err != nil {
			return fmt.Errorf("nbh-sync sync: %v\n%s", err, out)
		}
	}
	sock, err := benchenv.EngineSocket()
	if err != nil {
		return err
	}
	proxySock := filepath.Join(f.dir, "docker.sock")
	var counter benchenv.Counter
	stop, err := benchenv.CountingProxy(proxySock, sock, &counter, nil)
	if err != nil {
		return err
	}
	defer stop()

	for _, n := range ns {
		have, err := f.count(ctx, cli)
		if err != nil {
			return err
		}
		if have < n {
			fmt.Printf("setup: creating containers %d..%d\n", have, n-1)
			t0 := time.Now()
			if err := f.create(ctx, cli, dummy, have, n, workers); err != nil {
				return err
			}
			fmt.Printf("setup: %d containers in %s\n", n-have, time.Since(t0).Round(time.Millisecond))
		} else if have > n {
			fmt.Printf("%d containers already (more than %d): measured at %d\n", have, n, have)
			n = have
		}
		if err := f.measure(ctx, bin, n, runs, proxySock, &counter); err != nil {
			return err
		}
		if watchtower != "" {
			if err := f.measureWatchtower(ctx, bin, watchtower, n, runs, proxySock, &counter); err != nil {
				return err
			}
		}
	}
	return nil
}

func newFixture(prefix, dir string) fixture {
	return fixture{prefix: prefix, dir: dir, config: filepath.Join(dir, "config"), root: filepath.Join(dir, "root"), course: prefix + "-c"}
}

// setup writes and commits the config repo.
func (f fixture) setup(ctx context.Context) error {
	if err := f.save(); err != nil {
		return err
	}
	files := map[string]string{
		"courses.yaml": fmt.Sprintf("version: 1\ndefaults:\n  freeze: [{cron: \"* * * * *\", for: 1h}]\nimages:\n  %s-shared:\n    dockerfile: images/shared.dockerfile\ncourses:\n  %s:\n    repo: .\n    path: course\n    image: %s-shared\n",
			f.prefix, f.course, f.prefix),
		"images/shared.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"course/README.md":         "# a course\n",
	}
	for name, content := range files {
		p := filepath.Join(f.config, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "site"}} {
		if err := benchenv.Git(f.config, args...); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// count is how many of the course's containers exist.
func (f fixture) count(ctx context.Context, cli *client.Client) (int, error) {
	out, err := exec.CommandContext(ctx, "docker", "ps", "-a", "-q", "--filter", "label="+containers.LabelSite+"="+f.root).Output()
	if err != nil {
		return 0, fmt.Errorf("docker ps: %w", err)
	}
	return len(strings.Fields(string(out))), nil
}

// create makes containers from..to-1 of the course, as a spawn labels
// them (managed, course, student, site), created and not started.
func (f fixture) create(ctx context.Context, cli *client.Client, img string, from, to, workers int) error {
	var made atomic.Int64
	return benchenv.Parallel(ctx, to-from, workers, func(i int) error {
		student := fmt.Sprintf("s%05d", from+i)
		_, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"/none"}, Labels: map[string]string{
			containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: f.course, containers.LabelStudent: student,
			containers.LabelSite: f.root,
			// watchtower --label-enable monitors these (and only these).
			benchenv.WatchtowerEnable: "true",
		}}, nil, nil, nil, naming.Container(f.course, student))
		if err != nil {
			return fmt.Errorf("create container %s: %w", student, err)
		}
		if m := made.Add(1); m%1000 == 0 {
			fmt.Printf("  %d/%d\n", m, to-from)
		}
		return nil
	})
}

// measure times each command beside the baseline, interleaved, and counts
// the engine calls of one run of each.
func (f fixture) measure(ctx context.Context, bin string, n, runs int, proxySock string, counter *benchenv.Counter) error {
	common := []string{"--config", f.config, "--root", f.root}
	cmds := []struct {
		name string
		args []string
	}{
		{"plan", append([]string{"plan"}, common...)},
		{"status", append([]string{"status"}, common...)},
		{"status --json", append([]string{"status", "--json"}, common...)},
		{"why", append([]string{"why", f.course}, common...)},
		// The process start alone, beside the same list: what of the
		// floor is not the engine's.
		{"--version", []string{"--version"}},
	}
	base := []string{"docker", "ps", "-a", "--filter", "label=" + containers.LabelSite + "=" + f.root}
	fmt.Printf("baseline: %s\n", strings.Join(base, " "))
	// The first plan fetches the config repo into its mirror under ROOT,
	// as on a site; it is not timed.
	if err := exec.CommandContext(ctx, bin, cmds[0].args...).Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return fmt.Errorf("nbh-sync plan: %w", err)
		}
	}
	for _, c := range cmds {
		counter.Take()
		_, _, out, err := timed(ctx, "DOCKER_HOST=unix://"+proxySock, bin, c.args...)
		if err != nil {
			return fmt.Errorf("nbh-sync %s: %v\n%s", c.name, err, out)
		}
		counts := counter.Take()
		var nbh, docker, nbhCPU, dockerCPU []time.Duration
		var ratios []float64
		for range runs {
			a, acpu, _, err := timed(ctx, "", bin, c.args...)
			if err != nil {
				return fmt.Errorf("nbh-sync %s: %w", c.name, err)
			}
			b, bcpu, _, err := timed(ctx, "", base[0], base[1:]...)
			if err != nil {
				return fmt.Errorf("%s: %w", strings.Join(base, " "), err)
			}
			nbh, docker = append(nbh, a), append(docker, b)
			nbhCPU, dockerCPU = append(nbhCPU, acpu), append(dockerCPU, bcpu)
			ratios = append(ratios, float64(a)/float64(b))
		}
		slices.Sort(ratios)
		best, bestBase := slices.Min(nbh), slices.Min(docker)
		cpu, cpuBase := slices.Min(nbhCPU), slices.Min(dockerCPU)
		fmt.Printf("RESULT cmds cmd=%q n=%d nbh=%s base=%s ratio=%.2f pair_median=%.2f cpu=%s base_cpu=%s cpu_ratio=%.2f calls=%d engine=%q\n",
			c.name, n, best.Round(100*time.Microsecond), bestBase.Round(100*time.Microsecond), float64(best)/float64(bestBase),
			ratios[len(ratios)/2], cpu, cpuBase, float64(cpu)/float64(max(cpuBase, 1)), benchenv.Total(counts), benchenv.Describe(counts))
	}
	return nil
}

// measureWatchtower times watchtower's one monitor-only pass over the same
// containers beside nbh-sync plan, interleaved, the best of runs each, and
// counts its engine calls. watchtower lists every container, then inspects
// each one and its image before it filters on the enable label; nothing
// is pulled or changed (--monitor-only --no-pull), the same read-only
// question plan answers.
func (f fixture) measureWatchtower(ctx context.Context, bin, watchtower string, n, runs int, proxySock string, counter *benchenv.Counter) error {
	wtArgs := []string{"--run-once", "--monitor-only", "--no-pull", "--include-stopped", "--label-enable"}
	planArgs := []string{"plan", "--config", f.config, "--root", f.root}
	counter.Take()
	if _, _, out, err := timed(ctx, "DOCKER_HOST=unix://"+proxySock, watchtower, wtArgs...); err != nil {
		return fmt.Errorf("watchtower: %v\n%s", err, out)
	}
	counts := counter.Take()
	var wt, plan []time.Duration
	for range runs {
		a, _, _, err := timed(ctx, "", bin, planArgs...)
		if err != nil {
			return fmt.Errorf("nbh-sync plan: %w", err)
		}
		b, _, out, err := timed(ctx, "", watchtower, wtArgs...)
		if err != nil {
			return fmt.Errorf("watchtower: %v\n%s", err, out)
		}
		plan, wt = append(plan, a), append(wt, b)
	}
	best, bestWT := slices.Min(plan), slices.Min(wt)
	fmt.Printf("RESULT cmds cmd=\"plan vs watchtower\" n=%d nbh=%s watchtower=%s speedup=%.1f watchtower_calls=%d engine=%q\n",
		n, best.Round(100*time.Microsecond), bestWT.Round(100*time.Microsecond), float64(bestWT)/float64(best),
		benchenv.Total(counts), benchenv.Describe(counts))
	return nil
}

// timed runs name args as a process, its output discarded, and returns its
// wall time and its CPU time (user and system); env, when not empty, is
// added to its environment. A plan's exit status 2 (changes) is no
// failure.
func timed(ctx context.Context, env, name string, args ...string) (wall, cpu time.Duration, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != "" {
		cmd.Env = append(os.Environ(), env)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		err = nil
	}
	return wall, cpu, errb.String(), err
}
