package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	gobuild "go/build"
	"io"
	"maps"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// testPrefix names every image and container the daemon tests make.
const testPrefix = "nbhtest-dt-"

func requireDocker(t *testing.T) *client.Client { return testenv.RequireDocker(t) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// --- git fixtures (the git CLI is fine in tests; the product uses go-git) ---

func runGit(t *testing.T, dir string, args ...string) string { return testenv.Git(t, dir, args...) }

// workTree is a git work tree, optionally pushing to a bare remote.
type workTree struct {
	dir  string
	push bool
}

func newWorkTree(t *testing.T, dir, bare string) *workTree {
	t.Helper()
	runGit(t, filepath.Dir(dir), "init", "-q", "-b", "main", dir)
	w := &workTree{dir: dir}
	if bare != "" {
		runGit(t, filepath.Dir(bare), "init", "-q", "--bare", "-b", "main", bare)
		runGit(t, dir, "remote", "add", "origin", bare)
		w.push = true
	}
	return w
}

// commit writes files, commits them (and pushes) and returns the commit.
func (w *workTree) commit(t *testing.T, files map[string]string, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		runGit(t, w.dir, "add", name)
	}
	runGit(t, w.dir, "commit", "-q", "-m", msg)
	if w.push {
		runGit(t, w.dir, "push", "-q", "origin", "HEAD")
	}
	return runGit(t, w.dir, "rev-parse", "HEAD")
}

// httpRemote serves the bare repos under dir with git http-backend.
func httpRemote(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	execPath := runGit(t, dir, "--exec-path")
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  append([]string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...),
	}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)
	return srv
}

// --- images ---

// buildImage builds a context of files (name → content; names ending in
// "busybox" are executable) on the engine, tagged tag; it returns the ID.
func buildImage(t *testing.T, cli *client.Client, tag string, files map[string][]byte) string {
	t.Helper()
	var fs []testenv.File
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f := testenv.File{Name: name, Data: files[name]}
		if strings.HasSuffix(name, "busybox") {
			f.Mode = 0o755
		}
		fs = append(fs, f)
	}
	id, err := testenv.BuildImage(t.Context(), cli, fs, tag)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// busyboxBase builds, FROM scratch, an image with Debian's static busybox
// as /bin/busybox and its applets (/bin/sh, sleep, ...), so that course
// Dockerfiles can RUN shell commands. Everything built on it — the
// daemon's builds, their intermediate images, any container of them — is
// removed at cleanup.
func busyboxBase(t *testing.T, cli *client.Client) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("need a static /bin/busybox (Debian package busybox-static): %v", err)
	}
	tag := testPrefix + "base-" + randHex(4) + ":v1"
	// The label makes the image this test's own: without it the layer
	// cache gives every concurrent test (and every concurrent run on the
	// engine) the same image ID, and the first clean-up removed the base
	// from under the others' builds, which then tried to pull it. It comes
	// first: a COPY or RUN layer shared through the cache with another
	// test's base would be pruned by that test's clean-up while this build
	// still uses it ("failed to get digest").
	id := buildImage(t, cli, tag, map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nLABEL org.nbhosting.test-base=" + tag + "\nCOPY busybox /bin/busybox\n" + `RUN ["/bin/busybox", "--install", "-s", "/bin"]` + "\n"),
		"busybox":    bb,
	})
	t.Cleanup(func() { removeImageTree(t, cli, id) })
	return tag
}

// removeImageTree removes the containers of root and of every image built
// on it, then those images, children first.
func removeImageTree(t *testing.T, cli *client.Client, root string) {
	ctx := context.Background()
	all, err := cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		t.Logf("cleanup: list images: %v", err)
		return
	}
	parent := map[string]string{}
	for _, im := range all {
		parent[im.ID] = im.ParentID
	}
	depth := func(id string) int { // ≥ 0 inside the tree, -1 outside
		for d := 0; id != "" && d < 1000; d++ {
			if id == root {
				return d
			}
			id = parent[id]
		}
		return -1
	}
	var tree []string
	for id := range parent {
		if depth(id) >= 0 {
			tree = append(tree, id)
		}
	}
	slices.SortFunc(tree, func(a, b string) int { return depth(b) - depth(a) })
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err == nil {
		for _, c := range cs {
			if slices.Contains(tree, c.ImageID) {
				_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
	}
	for _, id := range tree {
		if _, err := cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
			t.Logf("cleanup: remove image %s: %v", id, err)
		}
	}
}

// cleanupCourse removes, at cleanup, the containers of course and then
// the images built for it (in that order: an image a container uses
// cannot be removed).
func cleanupCourse(t *testing.T, cli *client.Client, course string) {
	t.Cleanup(func() {
		ctx := context.Background()
		imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "org.nbhosting.image="+course))})
		for _, im := range imgs {
			cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	cleanupContainers(t, cli, course)
}

// cleanupContainers removes, at cleanup, the containers named with prefix.
func cleanupContainers(t *testing.T, cli *client.Client, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
		if err != nil {
			return
		}
		for _, c := range cs {
			for _, n := range c.Names {
				if strings.HasPrefix(strings.TrimPrefix(n, "/"), prefix) {
					_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
				}
			}
		}
	})
}

// --- the daemon as a process ---

// nbhSyncBinary compiles ./cmd/nbh-sync, with the race detector when the
// test has it.
func nbhSyncBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "nbh-sync")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(filepath.Join(gobuild.Default.GOROOT, "bin", "go"), append(args, "../cmd/nbh-sync")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nbh-sync: %v\n%s", err, b)
	}
	return out
}

// logLine is one JSON log line of the daemon, with the time it was read.
type logLine struct {
	Read   time.Time
	Fields map[string]any
	Raw    string
}

func (l logLine) str(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// time is the time the daemon wrote on the line.
func (l logLine) time() time.Time {
	tm, _ := time.Parse(time.RFC3339Nano, l.str("time"))
	return tm
}

// proc is a running `nbh-sync run`.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string

	mu    sync.Mutex
	lines []logLine
	more  chan struct{} // closed and replaced at each new line

	exited chan struct{}
	state  *os.ProcessState
}

// startDaemon runs nbh-sync with args and waits for its listening line.
// startFrontDoorDaemon starts `nbh-sync run` on config and root with its
// API on a free loopback port, the token "api-tok" in a file beside root,
// and the front door on a port of its own. It returns the daemon, the
// token file and the front door's URL.
func startFrontDoorDaemon(t *testing.T, bin, config, root string) (p *proc, tokenFile, front string) {
	t.Helper()
	tokenFile = filepath.Join(filepath.Dir(root), "api-token")
	if err := os.WriteFile(tokenFile, []byte("api-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p = startDaemon(t, bin, "run", "--config", config, "--root", root, "--listen", "127.0.0.1:0", "--api-token-file", tokenFile,
		"--log-format", "json", "--grace", testGrace.String(), "--proxy-listen", "127.0.0.1:"+strconv.Itoa(port))
	return p, tokenFile, "http://127.0.0.1:" + strconv.Itoa(port)
}

func startDaemon(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, args...), more: make(chan struct{}), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), testenv.GitEnv...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := logLine{Read: time.Now(), Raw: sc.Text()}
			_ = json.Unmarshal(sc.Bytes(), &l.Fields)
			p.mu.Lock()
			p.lines = append(p.lines, l)
			close(p.more)
			p.more = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		<-read // Wait must follow the last read of the pipe
		_ = p.cmd.Wait()
		p.mu.Lock()
		p.state = p.cmd.ProcessState
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if n := p.count(0, func(l logLine) bool { return strings.Contains(l.Raw, "WARNING: DATA RACE") }); n > 0 {
			t.Errorf("the daemon reported %d data races", n)
		}
		if t.Failed() {
			p.mu.Lock()
			for _, l := range p.lines {
				t.Log("daemon: " + l.Raw)
			}
			p.mu.Unlock()
		}
	})
	l := p.waitLog(30*time.Second, "listening line", func(l logLine) bool { return l.str("msg") == "listening" })
	p.addr = l.str("addr")
	if p.addr == "" {
		t.Fatalf("listening line without addr: %s", l.Raw)
	}
	return p
}

// waitLog returns the first log line since the start that matches, waiting
// for it up to timeout.
func (p *proc) waitLog(timeout time.Duration, what string, match func(logLine) bool) logLine {
	p.t.Helper()
	return p.waitLogFrom(0, timeout, what, match)
}

// mark is the number of lines read so far: waitLogFrom(mark, ...) looks
// only at lines written after it.
func (p *proc) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

func (p *proc) waitLogFrom(from int, timeout time.Duration, what string, match func(logLine) bool) logLine {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for ; from < len(p.lines); from++ {
			if match(p.lines[from]) {
				l := p.lines[from]
				p.mu.Unlock()
				return l
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.exited:
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if from == n {
				p.t.Fatalf("daemon exited (%v) while waiting for %s", p.state, what)
			}
		case <-deadline.C:
			p.t.Fatalf("timed out after %s waiting for %s in the daemon's log", timeout, what)
		}
	}
}

// count returns how many lines since from match.
func (p *proc) count(from int, match func(logLine) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines[from:] {
		if match(l) {
			n++
		}
	}
	return n
}

// terminate sends SIGTERM and waits up to timeout for the process to exit,
// returning how long it took.
func (p *proc) terminate(timeout time.Duration) (time.Duration, *os.ProcessState) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("daemon still running %s after SIGTERM", timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(start), p.state
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

// getJSON GETs path into v and returns the status.
func (p *proc) getJSON(path string, v any) int {
	p.t.Helper()
	resp, err := http.Get(p.url(path))
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			p.t.Fatalf("GET %s: decode: %v", path, err)
		}
	}
	return resp.StatusCode
}

// post POSTs body to path with headers and returns the status and body.
func (p *proc) post(path string, body []byte, headers map[string]string) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url(path), bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
