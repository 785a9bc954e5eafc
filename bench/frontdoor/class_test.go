package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/proxy"
)

// classRig is a course of fake Jupyter servers behind a front door, and
// the ways of starting a class on it.
type classRig struct {
	n int
	// student opens student i's server through the front door: a launch,
	// then page loads until the server's page; it returns the time to the
	// first byte of that page.
	student func(i int) (time.Duration, error)
	// dockerRun is the baseline: one docker run -d and the readiness wait.
	dockerRun func(i int) (time.Duration, error)
	// class runs one for n students at once, sorted times and failures.
	class func(one func(int) (time.Duration, error)) ([]time.Duration, int)
	// removeAll removes the course's containers.
	removeAll func()
	m         *containers.Manager
	co        manifest.Course
	root      string
	cli       *client.Client
	img       string
	front     *proxy.Proxy
}

func newClassRig(b *testing.B) *classRig {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("BENCH_CLASS")); err == nil && v > 0 {
		n = v
	}
	fc := benchenv.NewFakeCourse(b, "class", "{prefix}")
	cli, name, img, root, co, m := fc.Cli, fc.Course.Name, fc.Image, fc.Root, fc.Course, fc.Manager
	key := make([]byte, 32)
	rand.Read(key)
	p, err := proxy.New(proxy.Options{Key: key, Spawner: managerSpawner{m, co, root}})
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(p)
	b.Cleanup(front.Close) // the rig outlives this function
	ctx := b.Context()

	removeAll := func() {
		cs, _ := m.List(context.Background(), nil)
		var wg sync.WaitGroup
		for _, c := range cs {
			if c.Course == name {
				wg.Go(func() { _ = cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
			}
		}
		wg.Wait()
	}

	// One student through the front door: launch, then page loads.
	student := func(i int) (time.Duration, error) {
		s := fmt.Sprintf("s%d", i)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		start := time.Now()
		launch := p.Launch(proxy.Route{Key: proxy.Key{Course: name, Student: s}, BasePath: naming.Prefix(name, s)})
		resp, err := c.Get(front.URL + launch)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+naming.Prefix(name, s)+"api", nil)
			req.Header.Set("Accept", "text/html")
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			ttfb := time.Since(start)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				return ttfb, nil
			case http.StatusServiceUnavailable:
				wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(wait, 1)) * time.Second) // the page's own reload
			default:
				return 0, fmt.Errorf("%s: %s", s, resp.Status)
			}
		}
	}
	// One docker run -d and the wait.
	dockerRun := func(i int) (time.Duration, error) {
		start := time.Now()
		port, err := testenv.FreePort()
		if err != nil {
			return 0, err
		}
		ps := strconv.Itoa(port)
		dir := filepath.Join(root, "students", fmt.Sprintf("r%d", i), name)
		out, err := exec.CommandContext(ctx, "docker", "run", "-d", "--name", fmt.Sprintf("%s-x-r%d", name, i),
			"-p", "127.0.0.1:"+ps+":8888", "-v", dir+":/home/jovyan/work", "--memory", "64m",
			img, "/fakejupyter", "--port=8888", "--base-url=/"+ps+"/").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("docker run: %v: %s", err, out)
		}
		if err := containers.WaitReady(ctx, containers.ServerURL("127.0.0.1", port, naming.BasePath(port)), 2*time.Minute); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	class := func(one func(int) (time.Duration, error)) (ts []time.Duration, failed int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				d, err := one(i)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					b.Log(err)
					return
				}
				ts = append(ts, d)
			})
		}
		wg.Wait()
		slices.Sort(ts)
		return ts, failed
	}
	return &classRig{n: n, student: student, dockerRun: dockerRun, class: class, removeAll: removeAll, m: m, co: co, root: root, cli: cli, img: img, front: p}
}

// at is the p-th percentile of sorted ts, in ms.
func at(ts []time.Duration, p int) float64 {
	if len(ts) == 0 {
		return 0
	}
	return float64(ts[min(len(ts)-1, len(ts)*p/100)]) / 1e6
}

// BenchmarkClassStart is a class starting at once: BENCH_CLASS (100)
// students open their servers through the front door at the same moment —
// a launch, then page loads that follow the "starting" page as a browser
// does (reloading after its Retry-After) until the server's page comes —
// each spawned on demand by containers.Manager.Spawn (the daemon's path),
// from a FROM-scratch image of the fake Jupyter. Baseline, same run: the
// same number of `docker run -d` of that image in parallel, each followed
// by the same readiness wait. It reports the time to the first byte of
// each student's page (p50, p99, slowest), how many were served, and the
// p99 ratio.
//
//	go test -run XXX -bench ClassStart -benchtime 1x ./bench/frontdoor/
func BenchmarkClassStart(b *testing.B) {
	r := newClassRig(b)
	class, student, dockerRun, removeAll := r.class, r.student, r.dockerRun, r.removeAll
	for b.Loop() {
		fd, fdFail := class(student)
		removeAll()
		dr, drFail := class(dockerRun)
		removeAll()
		b.ReportMetric(at(fd, 50), "frontdoor-p50-ms")
		b.ReportMetric(at(fd, 99), "frontdoor-p99-ms")
		b.ReportMetric(at(fd, 100), "frontdoor-max-ms")
		b.ReportMetric(float64(len(fd)), "served")
		b.ReportMetric(at(dr, 50), "dockerrun-p50-ms")
		b.ReportMetric(at(dr, 99), "dockerrun-p99-ms")
		b.ReportMetric(at(dr, 100), "dockerrun-max-ms")
		b.ReportMetric(at(fd, 99)/at(dr, 99), "p99-ratio")
		if fdFail+drFail > 0 {
			b.Errorf("%d students not served through the front door, %d docker runs failed", fdFail, drFail)
		}
	}
}

// warmConcurrency is site's warm-up concurrency: a pass starts two
// servers at a time.
const warmConcurrency = 2

// paced runs one(i) for the rig's n students, warmConcurrency at a time,
// and returns how long they all took and how many failed.
func (r *classRig) paced(b *testing.B, one func(i int) error) (time.Duration, int) {
	start := time.Now()
	sem := make(chan struct{}, warmConcurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := range r.n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := one(i); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				b.Log(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start), failed
}

// engineStart is the warm-up's baseline: the same servers made the way
// `docker run -d` makes them (the engine API's create then start, same
// image, command, port binding, mount and memory limit), each followed by
// the readiness wait Spawn makes; it returns the IDs made, to be removed.
func (r *classRig) engineStart(ctx context.Context, i int) (string, error) {
	port, err := testenv.FreePort()
	if err != nil {
		return "", err
	}
	ps := strconv.Itoa(port)
	dir := filepath.Join(r.root, "students", fmt.Sprintf("e%d", i), r.co.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := nat.Port("8888/tcp")
	made, err := r.cli.ContainerCreate(ctx,
		&container.Config{Image: r.img, Cmd: []string{"/fakejupyter", "--port=8888", "--base-url=/" + ps + "/"}, ExposedPorts: nat.PortSet{p: {}}},
		&container.HostConfig{PortBindings: nat.PortMap{p: {{HostIP: "127.0.0.1", HostPort: ps}}},
			Binds: []string{dir + ":/home/jovyan/work"}, Resources: container.Resources{Memory: 64 << 20}},
		nil, nil, fmt.Sprintf("%s-x-e%d", r.co.Name, i))
	if err != nil {
		return "", err
	}
	if err := r.cli.ContainerStart(ctx, made.ID, container.StartOptions{}); err != nil {
		return made.ID, err
	}
	return made.ID, containers.WaitReady(ctx, containers.ServerURL("127.0.0.1", port, naming.BasePath(port)), 2*time.Minute)
}

// coldAmongWarm is how many students nobody expected (BENCH_COLD, 20)
// arrive with the warmed class in BenchmarkWarmClass's mixed round.
func coldAmongWarm() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_COLD")); err == nil && v >= 0 {
		return v
	}
	return 20
}

// mixed opens, at the same moment, the pages of the rig's n warmed
// students and of cold more students (s<n>…, never warmed: spawned on
// demand), and returns each group's sorted times and the failures.
func (r *classRig) mixed(b *testing.B, cold int) (warm, spawned []time.Duration, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range r.n + cold {
		wg.Go(func() {
			d, err := r.student(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failed++
				b.Log(err)
			case i < r.n:
				warm = append(warm, d)
			default:
				spawned = append(spawned, d)
			}
		})
	}
	wg.Wait()
	slices.Sort(warm)
	slices.Sort(spawned)
	return warm, spawned, failed
}

// BenchmarkWarmClass is the class of BenchmarkClassStart on a warmed
// course: before the class, its BENCH_CLASS (100) servers are started as a
// warm window's pass starts them (containers.Manager.Spawn, two at a time,
// as site's warm-up does, each server put in the front door's route table
// as the daemon's Warmed does), then every student opens theirs through
// the front door at once. Then the routes are dropped and the class opens
// the same warm servers again, each launch through a spawn (engine calls
// and a readiness check on a running server: the front door before the
// warm-up told it of its servers). Between the two, a mixed round: the
// warm class again with BENCH_COLD (20) students nobody expected arriving
// at the same moment, their servers spawned on demand. Baselines, same run: the same class
// cold (spawned on demand); and, for the warm-up, the engine's own start of
// as many containers of the image, two at a time (engineStart). It reports
// the time to the first byte of each student's page warm (routed, and
// through a spawn) and cold (p50, p99), the warm/cold p99 ratio, the
// warm-up's duration, the engine's, and their ratio.
//
//	go test -run XXX -bench WarmClass -benchtime 1x ./bench/frontdoor/
func BenchmarkWarmClass(b *testing.B) {
	r := newClassRig(b)
	routes := make([]proxy.Route, r.n)
	warmUp := func() (time.Duration, int) {
		return r.paced(b, func(i int) error {
			s := fmt.Sprintf("s%d", i)
			sp, err := r.m.Spawn(b.Context(), r.co, s, containers.SpawnOptions{Root: r.root, UID: "1000"})
			if err == nil {
				routes[i] = proxy.Route{Key: proxy.Key{Course: r.co.Name, Student: s}, Host: "127.0.0.1:" + strconv.Itoa(sp.Port), BasePath: sp.BasePath, Port: sp.Port}
				r.front.Routes().Set(routes[i])
			}
			return err
		})
	}
	engine := func() (time.Duration, int) {
		ids := make([]string, r.n)
		took, failed := r.paced(b, func(i int) (err error) {
			ids[i], err = r.engineStart(b.Context(), i)
			return err
		})
		var wg sync.WaitGroup
		for _, id := range ids {
			if id != "" {
				wg.Go(func() { _ = r.cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true}) })
			}
		}
		wg.Wait()
		return took, failed
	}
	for b.Loop() {
		cold, coldFail := r.class(r.student)
		r.removeAll()
		engineTook, engineFail := engine()
		took, warmFail := warmUp()
		warm, fail := r.class(r.student)
		mixedWarm, mixedCold, mixedFail := r.mixed(b, coldAmongWarm())
		for _, rt := range routes {
			r.front.Routes().Drop(rt)
		}
		spawned, spawnFail := r.class(r.student)
		r.removeAll()
		b.ReportMetric(at(warm, 50), "warm-p50-ms")
		b.ReportMetric(at(warm, 99), "warm-p99-ms")
		b.ReportMetric(float64(len(warm)), "served")
		b.ReportMetric(at(spawned, 50), "warm-spawn-p50-ms")
		b.ReportMetric(at(spawned, 99), "warm-spawn-p99-ms")
		b.ReportMetric(at(cold, 50), "cold-p50-ms")
		b.ReportMetric(at(cold, 99), "cold-p99-ms")
		b.ReportMetric(at(warm, 99)/at(cold, 99), "p99-ratio")
		b.ReportMetric(at(mixedWarm, 99), "mixed-warm-p99-ms")
		b.ReportMetric(at(mixedCold, 99), "mixed-cold-p99-ms")
		b.ReportMetric(took.Seconds(), "warmup-s")
		b.ReportMetric(engineTook.Seconds(), "engine-start-s")
		b.ReportMetric(took.Seconds()/engineTook.Seconds(), "warmup-ratio")
		if coldFail+warmFail+fail+mixedFail+spawnFail+engineFail > 0 {
			b.Errorf("%d cold, %d warm, %d of the mixed round and %d warm-through-a-spawn students not served, %d warm-ups and %d engine starts failed",
				coldFail, fail, mixedFail, spawnFail, warmFail, engineFail)
		}
	}
}

// managerSpawner spawns with the containers manager, as the daemon does.
type managerSpawner struct {
	m    *containers.Manager
	co   manifest.Course
	root string
}

func (s managerSpawner) Spawn(ctx context.Context, course, student string) (proxy.Route, error) {
	sp, err := s.m.Spawn(ctx, s.co, student, containers.SpawnOptions{Root: s.root, UID: "1000"})
	if err != nil {
		return proxy.Route{}, err
	}
	return proxy.Route{Key: proxy.Key{Course: course, Student: student}, Host: "127.0.0.1:" + strconv.Itoa(sp.Port),
		BasePath: sp.BasePath, Port: sp.Port}, nil
}
