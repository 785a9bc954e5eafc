// Command memory measures the resident memory of the nbh-sync daemon on a
// site of many courses and containers, beside a `sleep` process as a floor.
// See README.md.
//
//	go run ./bench/memory -courses 100 -containers 1000
//
// It builds ./cmd/nbh-sync, makes the course repos (bare, served over smart
// HTTP as a site's git server serves them, or file:// URLs with -transport
// file), a config repo with courses.yaml, and the containers (created, not started,
// labelled as nbh-sync's), starts the daemon with -cmd, waits for /readyz,
// then samples VmRSS (and VmHWM) from /proc/PID/status.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
)

var binFlag, transport string

const defaultCmd = "run --config {config} --root {root} --listen {listen}"

func main() {
	nCourses := flag.Int("courses", 100, "course repos")
	nCtrs := flag.Int("containers", 1000, "managed containers (created, not started), spread over the courses")
	cmdline := flag.String("cmd", defaultCmd, "daemon arguments; {config}, {root} and {listen} are replaced")
	ready := flag.Duration("ready-timeout", 10*time.Minute, "how long to wait for /readyz")
	settle := flag.Duration("settle", 10*time.Second, "how long to sample after ready")
	workers := flag.Int("workers", 8, "concurrent engine calls while setting up and cleaning up")
	flag.StringVar(&binFlag, "bin", "", "daemon binary to run instead of building ./cmd/nbh-sync")
	flag.StringVar(&transport, "transport", "http", "how the daemon reaches the course repos: http (smart HTTP, git http-backend behind a local server) or file")
	flag.Parse()
	if transport != "http" && transport != "file" {
		fmt.Fprintf(os.Stderr, "bench/memory: -transport %q: want http or file\n", transport)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, max(*nCourses, 1), *nCtrs, *cmdline, *ready, *settle, max(*workers, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "bench/memory:", err)
		os.Exit(1)
	}
}

// repo makes a bare repo at bare holding files in one commit on main.
func repo(tmp, bare string, files map[string]string) error {
	work, err := os.MkdirTemp(tmp, "work")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := benchenv.Git(tmp, "init", "-q", "--bare", "-b", "main", bare); err != nil {
		return err
	}
	if err := benchenv.Git(work, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	for name, content := range files {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-q", "-m", "init"}, {"push", "-q", bare, "main"}} {
		if err := benchenv.Git(work, args...); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, nCourses, nCtrs int, cmdline string, readyTimeout, settle time.Duration, workers int) error {
	for _, tool := range []string{"git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s on PATH", tool)
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	prefix := benchenv.Prefix("mem")
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		n := benchenv.Cleanup(cctx, cli, prefix, workers)
		fmt.Printf("cleanup: %d containers and the %s* images removed\n", n, prefix)
	}()

	bin := binFlag
	if bin == "" {
		fmt.Println("setup: building ./cmd/nbh-sync")
		bin = filepath.Join(tmp, "nbh-sync")
		// The bench's build serves the heap profile (pprofFile, added
		// with -overlay): the product's own build has no such endpoint.
		overlay, err := pprofOverlay(tmp)
		if err != nil {
			return err
		}
		gb := exec.CommandContext(ctx, "go", "build", "-overlay", overlay, "-o", bin, "./cmd/nbh-sync")
		gb.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := gb.CombinedOutput(); err != nil {
			return fmt.Errorf("build ./cmd/nbh-sync (run from the module root): %v\n%s", err, out)
		}
	}

	fmt.Printf("setup: %d course repos (%s) and a config repo\n", nCourses, transport)
	t0 := time.Now()
	course := func(i int) string { return fmt.Sprintf("%s-c%03d", prefix, i) }
	shared := prefix + "-shared"
	var yaml strings.Builder
	// Every course shares one image, built once. The containers made below
	// run another image, so they are stale; an always-open freeze window
	// holds their removal, so the daemon keeps all of them in view.
	fmt.Fprintf(&yaml, "version: 1\ndefaults:\n  freeze: [{cron: \"* * * * *\", for: 1h}]\nschedules:\n  pull: \"@every 1m\"\n  reconcile: \"*/15 * * * *\"\n")
	fmt.Fprintf(&yaml, "images:\n  %s:\n    dockerfile: images/shared.dockerfile\ncourses:\n", shared)
	bare := func(i int) string { return filepath.Join(tmp, "repos", course(i)+".git") }
	remote := func(i int) string { return "file://" + bare(i) }
	if transport == "http" {
		// In this process: its CPU and memory are not the daemon's.
		base, stop, err := benchenv.ServeGitHTTP(filepath.Join(tmp, "repos"))
		if err != nil {
			return err
		}
		defer stop()
		remote = func(i int) string { return base + "/" + course(i) + ".git" }
	}
	for i := range nCourses {
		fmt.Fprintf(&yaml, "  %s:\n    repo: %s\n    image: %s\n", course(i), remote(i), shared)
	}
	err = benchenv.Parallel(ctx, nCourses, workers, func(i int) error {
		return repo(tmp, bare(i), map[string]string{
			"README.md":          "# " + course(i) + "\n",
			"notebooks/intro.md": strings.Repeat("Some course text.\n", 200),
		})
	})
	if err != nil {
		return err
	}
	configRepo := filepath.Join(tmp, "config.git")
	configFiles := map[string]string{
		"courses.yaml":             yaml.String(),
		"images/shared.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	}
	if err := repo(tmp, configRepo, configFiles); err != nil {
		return err
	}
	fmt.Printf("setup: repos in %s\n", time.Since(t0).Round(time.Millisecond))
	if binFlag == "" {
		// validate reads a local copy: it does not read git URLs or bare
		// repos (yet).
		vdir := filepath.Join(tmp, "validate")
		for name, content := range configFiles {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(vdir, name)), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(vdir, name), []byte(content), 0o644); err != nil {
				return err
			}
		}
		if out, err := exec.CommandContext(ctx, bin, "validate", vdir).CombinedOutput(); err != nil {
			return fmt.Errorf("nbh-sync validate of the generated config: %v\n%s", err, out)
		}
	}
	if out, _ := exec.CommandContext(ctx, bin, "run", "--help").CombinedOutput(); !strings.Contains(string(out), "--listen") {
		return fmt.Errorf("this nbh-sync has no daemon (`nbh-sync run --help` says:\n%s)\nthe memory bench needs `nbh-sync run`", strings.TrimSpace(string(out)))
	}

	fmt.Printf("setup: %d containers\n", nCtrs)
	t0 = time.Now()
	dummy, err := dummyImage(ctx, cli, prefix+"-dummy:latest")
	if err != nil {
		return err
	}
	err = benchenv.Parallel(ctx, nCtrs, workers, func(i int) error {
		co, student := course(i%nCourses), fmt.Sprintf("s%04d", i)
		_, err := cli.ContainerCreate(ctx, &container.Config{Image: dummy, Cmd: []string{"/none"}, Labels: map[string]string{
			containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: co, containers.LabelStudent: student,
		}}, nil, nil, nil, naming.Container(co, student))
		if err != nil {
			return fmt.Errorf("create container %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("setup: containers in %s\n", time.Since(t0).Round(time.Millisecond))

	// The floor: a process that does nothing.
	sleep := exec.CommandContext(ctx, "sleep", "600")
	if err := sleep.Start(); err != nil {
		return err
	}
	defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()

	listen := "127.0.0.1:0"
	if strings.Contains(cmdline, "{listen}") {
		p, err := testenv.FreePort()
		if err != nil {
			return err
		}
		listen = "127.0.0.1:" + strconv.Itoa(p)
	}
	root := filepath.Join(tmp, "root")
	args := strings.Fields(strings.NewReplacer("{config}", configRepo, "{root}", root, "{listen}", listen).Replace(cmdline))
	fmt.Printf("daemon: %s %s\n", bin, strings.Join(args, " "))
	daemon := exec.CommandContext(ctx, bin, args...)
	daemon.Env = append(os.Environ(), testenv.GitEnv...)
	pprofAddr := ""
	if binFlag == "" {
		p, err := testenv.FreePort()
		if err != nil {
			return err
		}
		pprofAddr = "127.0.0.1:" + strconv.Itoa(p)
		daemon.Env = append(daemon.Env, pprofEnv+"="+pprofAddr)
	}
	logPath := filepath.Join(tmp, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// The log is kept, and scanned for the address when listening on :0.
	addrs := make(chan string, 1)
	pr, pw := io.Pipe()
	daemon.Stdout, daemon.Stderr = pw, pw
	go scanAddr(io.TeeReader(pr, logFile), addrs)
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait(); pw.Close() }()
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = daemon.Process.Kill()
			<-exited
		}
	}()

	t0 = time.Now()
	if strings.HasSuffix(listen, ":0") {
		select {
		case listen = <-addrs:
		case err := <-exited:
			return fmt.Errorf("daemon exited before listening: %v; log %s:\n%s", err, logPath, tail(logPath))
		case <-time.After(readyTimeout):
			return fmt.Errorf("no listening address in the daemon's log after %s (log %s)", readyTimeout, logPath)
		}
	}
	if err := waitReady(ctx, "http://"+listen+"/readyz", readyTimeout, exited); err != nil {
		return fmt.Errorf("%w; log:\n%s", err, tail(logPath))
	}
	readyIn := time.Since(t0)
	// VmHWM only grows: read now, it is the peak of the start (the first
	// pull of every course and the first container pass).
	_, hwmAtReady, err := vm(daemon.Process.Pid)
	if err != nil {
		return err
	}
	var rss, hwm int
	deadline := time.Now().Add(settle)
	for {
		r, h, err := vm(daemon.Process.Pid)
		if err != nil {
			return err
		}
		rss, hwm = max(rss, r), max(hwm, h)
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sleepRSS, _, err := vm(sleep.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("\nnbh-sync daemon, %d courses, %d containers: ready in %s\n", nCourses, nCtrs, readyIn.Round(time.Millisecond))
	fmt.Printf("%-34s %10s %10s\n", "", "VmRSS", "VmHWM")
	fmt.Printf("%-34s %7d kB %7d kB\n", "nbh-sync run (max over "+settle.String()+")", rss, hwm)
	fmt.Printf("%-34s %10s %7d kB\n", "  of which before ready", "", hwmAtReady)
	fmt.Printf("%-34s %7d kB\n", "sleep (floor)", sleepRSS)
	// What the resident memory is made of: the heap and stacks (anonymous)
	// or the executable's pages read from its file.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", daemon.Process.Pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") || strings.HasPrefix(line, "Threads:") {
				fmt.Println("  " + strings.Join(strings.Fields(line), " "))
			}
		}
	}
	fmt.Printf("RESULT memory transport=%s courses=%d containers=%d rss_kb=%d hwm_kb=%d hwm_ready_kb=%d floor_kb=%d ratio=%.1f\n",
		transport, nCourses, nCtrs, rss, hwm, hwmAtReady, sleepRSS, float64(rss)/float64(max(sleepRSS, 1)))
	if pprofAddr != "" {
		return heapTop(ctx, bin, "http://"+pprofAddr+"/debug/pprof/heap", filepath.Join(tmp, "heap.pprof"))
	}
	return nil
}

// pprofEnv names the address where the bench's build of the daemon serves
// net/http/pprof.
const pprofEnv = "NBH_BENCH_PPROF"

// pprofFile is added to package main of ./cmd/nbh-sync by the bench's
// build only.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// pprofOverlay writes pprofFile and the -overlay file of go build that
// adds it to ./cmd/nbh-sync, and returns the latter's path.
func pprofOverlay(tmp string) (string, error) {
	src := filepath.Join(tmp, "benchpprof.go")
	if err := os.WriteFile(src, []byte(pprofFile), 0o644); err != nil {
		return "", err
	}
	target, err := filepath.Abs(filepath.Join("cmd", "nbh-sync", "zz_benchpprof.go"))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(map[string]map[string]string{"Replace": {target: src}})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(tmp, "overlay.json")
	return overlay, os.WriteFile(overlay, b, 0o644)
}

// heapTop saves the daemon's heap profile (after a GC, as the endpoint
// makes it) to path and prints its top entries by in-use bytes.
func heapTop(ctx context.Context, bin, url, path string) error {
	resp, err := http.Get(url + "?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space", bin, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	fmt.Printf("\nheap profile of the daemon (in use, after a GC):\n%s", out)
	// What was allocated since the start, mostly by the first pull: the
	// garbage the GC's headroom is sized on.
	out, err = exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", "-nodecount=30", "-sample_index=alloc_space", bin, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	fmt.Printf("\nallocated since the start (cumulative):\n%s", out)
	return nil
}

var addrRE = regexp.MustCompile(`127\.0\.0\.1:([1-9][0-9]*)`)

func scanAddr(r io.Reader, out chan<- string) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		if m := addrRE.FindString(sc.Text()); m != "" && !sent {
			out <- m
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func waitReady(ctx context.Context, url string, timeout time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(string(body))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s (last: %s)", url, timeout, last)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("daemon exited before ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// vm reads VmRSS and VmHWM (kB) of pid.
func vm(pid int) (rss, hwm int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		case "VmHWM:":
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	return rss, hwm, nil
}

// dummyImage builds FROM scratch an image holding one small file.
func dummyImage(ctx context.Context, cli *client.Client, tag string) (string, error) {
	return testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte("FROM scratch\nCOPY none /none\n")}, {Name: "none", Data: []byte("x")}}, tag)
}
