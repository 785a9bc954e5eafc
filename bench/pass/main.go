// Command pass measures the container pass production runs
// (reconcile.Pass, as site.Site.Pass drives it) over many containers on the
// real engine, with the engine API calls counted: its observe-and-plan half
// side by side with what a naive tool does (`docker ps -a` and one `docker
// inspect` per container), then its apply half at the production
// concurrency side by side with one action at a time. See README.md.
//
//	go run ./bench/pass -n 1000 -running 50 -rounds 3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
)

func main() {
	sc := benchenv.ScaleFlags("managed containers (created, not started; -running of them started)")
	apply := flag.Bool("apply", true, "then apply the plan: half the courses one action at a time, half at the production concurrency")
	naive := flag.Bool("naive", true, "also time the CLI baselines (docker ps + one docker inspect each, and one of all)")
	watchtower := flag.String("watchtower", "", "watchtower binary (built from github.com/containrrr/watchtower) to time beside the pass: --run-once --monitor-only --no-pull --include-stopped --label-enable")
	benchenv.Main("bench/pass", func(ctx context.Context) error {
		if *watchtower == "" && !*naive {
			return errors.New("no baseline: give -watchtower or leave -naive on")
		}
		b := baselines{naive: *naive, watchtower: *watchtower}
		return run(ctx, sc.N, min(sc.Running, sc.N), max(sc.Courses, 2), max(sc.Rounds, 1), max(sc.Workers, 1), *apply, b)
	})
}

// ownContainers shows a pass only the containers whose name starts with
// one of prefixes: the engine is shared (with other benchmarks, tests, a
// real site), and this pass applies its plan.
type ownContainers struct {
	containers.Engine
	prefixes []string
}

func (o ownContainers) List(ctx context.Context) ([]containers.Raw, error) {
	all, err := o.Engine.List(ctx)
	var out []containers.Raw
	for _, r := range all {
		if slices.ContainsFunc(o.prefixes, func(p string) bool { return strings.HasPrefix(r.Name, p) }) {
			out = append(out, r)
		}
	}
	return out, err
}

// baselines says what the pass is timed beside.
type baselines struct {
	naive      bool   // docker ps + docker inspect
	watchtower string // the watchtower binary, if any
}

// benchenv.WatchtowerEnable is the label watchtower's --label-enable looks for: the
// bench's containers carry it, so that watchtower scans them and no other.

func run(ctx context.Context, n, running, nCourses, rounds, workers int, apply bool, base baselines) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return errors.New("the baseline needs the docker CLI on PATH")
	}
	sock, err := benchenv.EngineSocket()
	if err != nil {
		return err
	}
	cli, ver, err := benchenv.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	prefix := benchenv.Prefix("pass")
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Whatever happens from here on, clean up: containers first, then the
	// images they use.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		t0 := time.Now()
		removed := benchenv.Cleanup(cctx, cli, prefix, workers)
		fmt.Printf("cleanup: %d containers removed in %s\n", removed, time.Since(t0).Round(time.Millisecond))
	}()

	fmt.Printf("setup: building the fake Jupyter server and two images FROM scratch (%s)\n", prefix)
	bin := filepath.Join(tmp, "fakejupyter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/fakejupyter/cmd/fakejupyter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build fakejupyter (run from the module root): %v\n%s", err, out)
	}
	img := prefix + "-img"
	old, err := buildImage(ctx, cli, bin, img+":old")
	if err != nil {
		return err
	}
	cur, err := buildImage(ctx, cli, bin, img+":latest")
	if err != nil {
		return err
	}

	courseName := func(i int) string { return fmt.Sprintf("%s-c%d", prefix, i%nCourses) }
	cfg := &manifest.Config{Version: 1, Courses: map[string]manifest.Course{}}
	for i := range nCourses {
		cfg.Courses[courseName(i)] = manifest.Course{Name: courseName(i), Image: img, Idle: manifest.Duration(2 * time.Hour),
			Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 50}
	}

	fmt.Printf("setup: creating %d containers (%d running), %d workers\n", n, running, workers)
	t0 := time.Now()
	var made atomic.Int64
	err = benchenv.Parallel(ctx, n, workers, func(i int) error {
		student := fmt.Sprintf("s%04d", i)
		course := courseName(i)
		id := old
		if (i/nCourses)%2 == 0 {
			id = cur // half stale, half current, in every course
		}
		labels := map[string]string{containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: course, containers.LabelStudent: student,
			benchenv.WatchtowerEnable: "true"}
		cc := &container.Config{Image: id, Cmd: []string{"/fakejupyter"}, Labels: labels}
		var hc *container.HostConfig
		if i < running {
			port, err := testenv.FreePort()
			if err != nil {
				return err
			}
			labels[containers.LabelPort] = strconv.Itoa(port)
			cc.Cmd = []string{"/fakejupyter", "--port=8888", "--base-url=/" + strconv.Itoa(port) + "/"}
			cc.ExposedPorts = nat.PortSet{"8888/tcp": {}}
			hc = &container.HostConfig{PortBindings: nat.PortMap{"8888/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}},
				Resources: container.Resources{Memory: 32 << 20}}
		}
		res, err := cli.ContainerCreate(ctx, cc, hc, nil, nil, naming.Container(course, student))
		if err != nil {
			return fmt.Errorf("create container %d: %w", i, err)
		}
		if i < running {
			if err := cli.ContainerStart(ctx, res.ID, container.StartOptions{}); err != nil {
				return fmt.Errorf("start container %d: %w", i, err)
			}
		}
		if m := made.Add(1); m%200 == 0 {
			fmt.Printf("  %d/%d\n", m, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("setup: %d containers in %s\n", n, time.Since(t0).Round(time.Millisecond))

	// nbh-sync's side: the production Pass (as site.Site.Pass makes it) over
	// a client whose transport counts.
	ct := &benchenv.Counter{Base: benchenv.UnixTransport(sock)}
	docker, err := containers.DialDocker(client.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		return err
	}
	defer docker.Close()
	eng := ownContainers{docker, []string{prefix}}
	probes := &benchenv.Counter{Base: http.DefaultTransport}
	prober := activity.New()
	prober.Client = &http.Client{Transport: probes}
	pass := &reconcile.Pass{Containers: containers.New(eng, nil, nil), Prober: prober, Root: tmp, Concurrency: reconcile.DefaultConcurrency}
	// Wait until the running servers answer, so that every round probes the
	// same thing (a server still starting would be probed twice).
	if err := waitServers(ctx, pass, cfg, running); err != nil {
		return err
	}

	// The baseline: the docker CLI through a counting proxy of the socket.
	proxySock := filepath.Join(tmp, "docker.sock")
	pc := &benchenv.Counter{}
	stopProxy, err := benchenv.CountingProxy(proxySock, sock, pc, ownList(prefix))
	if err != nil {
		return err
	}
	defer stopProxy()
	dockerCLI := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+proxySock)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("docker %s: %w", args[0], err)
		}
		return out, nil
	}
	// What a naive tool does: list the managed containers, then inspect each
	// one for its labels, state, start time and image.
	naive := func(batch bool) (int, error) {
		// Only this run's containers, as on nbh-sync's side: others on the
		// shared engine may vanish between the list and their inspect.
		out, err := dockerCLI("ps", "-a", "-q", "--no-trunc", "--filter", "label="+containers.LabelManagedBy+"="+containers.ManagedBy,
			"--filter", "name=^"+prefix)
		if err != nil {
			return 0, err
		}
		ids := strings.Fields(string(out))
		if batch {
			_, err := dockerCLI(append([]string{"inspect"}, ids...)...)
			return len(ids), err
		}
		for _, id := range ids {
			if _, err := dockerCLI("inspect", id); err != nil {
				return 0, err
			}
		}
		return len(ids), nil
	}

	// watchtower, one run of it, through the same counting proxy: it
	// lists the labelled containers, then inspects each and its image.
	scanned := regexp.MustCompile(`Scanned=(\d+)`)
	watch := func() error {
		cmd := exec.CommandContext(ctx, base.watchtower, "--run-once", "--monitor-only", "--no-pull", "--include-stopped", "--label-enable")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+proxySock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("watchtower: %v\n%s", err, out)
		}
		m := scanned.FindAllSubmatch(out, -1)
		if len(m) == 0 {
			return fmt.Errorf("watchtower printed no Scanned= count:\n%s", out)
		}
		if got, _ := strconv.Atoi(string(m[len(m)-1][1])); got < n {
			return fmt.Errorf("watchtower scanned %d containers, want >= %d:\n%s", got, n, out)
		}
		return nil
	}

	seen := n
	var syncT, planT, eachT, batchT, watchT []time.Duration
	var syncCalls, probeCalls, eachCalls, batchCalls, watchCalls map[string]int
	var actions map[reconcile.Kind]int
	for r := range rounds {
		fmt.Printf("round %d/%d\n", r+1, rounds)
		ct.Take()
		probes.Take()
		t0 := time.Now()
		res, err := pass.Preview(ctx, cfg, false)
		if err != nil {
			return err
		}
		syncT = append(syncT, time.Since(t0))
		syncCalls, probeCalls = ct.Take(), probes.Take()
		// Plan alone, again on what was observed: the pure function's share.
		t1 := time.Now()
		reconcile.Plan(res.Observed.Desired, res.Observed.Containers, res.Observed.Activity, res.At)
		planT = append(planT, time.Since(t1))
		actions = map[reconcile.Kind]int{}
		mine := 0
		for _, a := range res.Actions {
			if strings.HasPrefix(a.Course, prefix) {
				actions[a.Kind]++
				mine++
			}
		}
		if mine != n {
			return fmt.Errorf("the plan covers %d of our %d containers", mine, n)
		}

		if base.watchtower != "" {
			pc.Take()
			t0 = time.Now()
			if err := watch(); err != nil {
				return err
			}
			watchT = append(watchT, time.Since(t0))
			watchCalls = pc.Take()
		}
		if !base.naive {
			continue
		}
		pc.Take()
		t0 = time.Now()
		seen, err = naive(false)
		if err != nil {
			return err
		}
		eachT = append(eachT, time.Since(t0))
		eachCalls = pc.Take()
		if seen < n {
			return fmt.Errorf("docker ps saw %d managed containers, want >= %d", seen, n)
		}

		t0 = time.Now()
		if _, err := naive(true); err != nil {
			return err
		}
		batchT = append(batchT, time.Since(t0))
		batchCalls = pc.Take()
	}

	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("\npass (observe + plan) over %d managed containers (%d running, %d stale), %d courses; Docker %s (API %s); median of %d rounds\n",
		n, running, n/2, nCourses, ver.Version, ver.APIVersion, rounds)
	fmt.Printf("%-42s %10s %12s  %s\n", "", "wall", "engine calls", "detail")
	fmt.Printf("%-42s %10s %12d  %s; plan alone %s; %d HTTP probes; actions %v\n", "nbh-sync Pass.Preview (observe + plan)",
		med(syncT).Round(time.Millisecond), benchenv.Total(syncCalls), benchenv.Describe(syncCalls), med(planT).Round(time.Microsecond), benchenv.Total(probeCalls), actions)
	// One line per baseline for bench/run.sh's summary.
	result := func(name, what string, t []time.Duration, calls map[string]int) {
		fmt.Printf("%-42s %10s %12d  %s\n", what, med(t).Round(time.Millisecond), benchenv.Total(calls), benchenv.Describe(calls))
		fmt.Printf("RESULT pass baseline=%s n=%d nbh=%s base=%s ratio=%.4f speedup=%.1f calls=%d base_calls=%d\n", name, n,
			med(syncT).Round(time.Millisecond), med(t).Round(time.Millisecond), float64(med(syncT))/float64(med(t)),
			float64(med(t))/float64(med(syncT)), benchenv.Total(syncCalls), benchenv.Total(calls))
	}
	if base.watchtower != "" {
		result("watchtower", "watchtower --run-once --monitor-only ...", watchT, watchCalls)
	}
	if base.naive {
		result("naive", fmt.Sprintf("docker ps -a + inspect each (%d CLI runs)", seen+1), eachT, eachCalls)
		result("batched", "docker ps -a + one docker inspect of all", batchT, batchCalls)
	}
	if apply {
		return applyHalves(ctx, pass, docker, ct, cfg, courseName, nCourses)
	}
	return nil
}

// applyHalves runs the production pass (Run: observe, plan, apply) over
// each half of the courses: the first at one action at a time — what
// site.Site.Pass did before it took the production pass — the second at
// the production concurrency. Each half has the same mix of containers.
func applyHalves(ctx context.Context, pass *reconcile.Pass, docker containers.Engine, ct *benchenv.Counter, cfg *manifest.Config, courseName func(int) string, nCourses int) error {
	fmt.Printf("\napply: the production pass (Run) over half the courses each\n")
	fmt.Printf("%-42s %10s %12s %8s  %s\n", "", "wall", "engine calls", "retired", "detail")
	var walls [2]time.Duration
	for half, conc := range []int{1, pass.Concurrency} {
		// The half's courses, and only their containers: another course's
		// would count as removed from courses.yaml, to be removed.
		sub := &manifest.Config{Version: cfg.Version, Defaults: cfg.Defaults, Courses: map[string]manifest.Course{}}
		var prefixes []string
		for i := half; i < nCourses; i += 2 {
			sub.Courses[courseName(i)] = cfg.Courses[courseName(i)]
			prefixes = append(prefixes, courseName(i)+naming.Sep)
		}
		p := *pass
		p.Containers = containers.New(ownContainers{docker, prefixes}, nil, nil)
		p.Concurrency = conc
		ct.Take()
		t0 := time.Now()
		res, err := p.Run(ctx, sub, false)
		walls[half] = time.Since(t0)
		if err != nil {
			return err
		}
		calls := ct.Take()
		done := 0
		for _, o := range res.Outcomes {
			if o.Done {
				done++
			}
		}
		if done == 0 {
			return fmt.Errorf("apply at concurrency %d retired nothing of %d actions", conc, len(res.Actions))
		}
		fmt.Printf("%-42s %10s %12d %8d  %s\n", fmt.Sprintf("Pass.Run, concurrency %d", conc),
			walls[half].Round(time.Millisecond), benchenv.Total(calls), done, benchenv.Describe(calls))
		fmt.Printf("RESULT apply concurrency=%d wall=%s retired=%d calls=%d\n", conc, walls[half].Round(time.Millisecond), done, benchenv.Total(calls))
	}
	fmt.Printf("ratio concurrency %d / 1: wall %.3f\n", pass.Concurrency, float64(walls[1])/float64(walls[0]))
	return nil
}

// waitServers polls until the running servers all answer their probe.
func waitServers(ctx context.Context, pass *reconcile.Pass, cfg *manifest.Config, running int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		obs, err := pass.Observe(ctx, cfg, false)
		if err != nil {
			return err
		}
		answered := 0
		for _, r := range obs.Activity {
			if r.State == activity.Answered {
				answered++
			}
		}
		if answered >= running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d servers answer after 2m", answered, running)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ownList is the baselines' counting proxy's answer rewrite: its
// container lists hold only the containers whose name starts with prefix,
// as the pass sees them (ownContainers): watchtower lists every container
// of the shared engine and inspects each before it reads their labels.
func ownList(prefix string) func(*http.Response) error {
	return func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, "/containers/json") || resp.StatusCode != http.StatusOK {
			return nil
		}
		var all []json.RawMessage
		err := json.NewDecoder(resp.Body).Decode(&all)
		resp.Body.Close()
		if err != nil {
			return err
		}
		mine := []json.RawMessage{}
		for _, raw := range all {
			var c struct{ Names []string }
			if err := json.Unmarshal(raw, &c); err != nil {
				return err
			}
			if len(c.Names) > 0 && strings.HasPrefix(c.Names[0], "/"+prefix) {
				mine = append(mine, raw)
			}
		}
		b, err := json.Marshal(mine)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		resp.Header.Del("Transfer-Encoding")
		return nil
	}
}

// buildImage builds FROM scratch an image holding the fake server, with a
// random label so that each call makes a distinct image ID, and the build
// labels of nbh-sync's builder, without which a site takes no image for
// its own (and so nothing for stale).
func buildImage(ctx context.Context, cli *client.Client, bin, tag string) (string, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	name, _, _ := strings.Cut(tag, ":")
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY fakejupyter /fakejupyter\nLABEL nbhtest.nonce=%x %s=%s %s=%x\nCMD [\"/fakejupyter\"]\n",
		b[:8], images.LabelImage, name, images.LabelBuildKey, b)
	return testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte(dockerfile)}, {Name: "fakejupyter", Mode: 0o755, Data: data}}, tag)
}
