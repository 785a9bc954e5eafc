package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"io"
	"maps"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// logLine is one log line of the daemon.
type logLine = testenv.LogLine

// proc is one run of `nbh-sync run`.
type proc struct {
	*testenv.Daemon
	t    *testing.T
	addr string
}

// startFrontDoorDaemon starts `nbh-sync run` on config and root with its
// API on a free loopback port, the token "api-tok" in a file beside root,
// and the front door on a port of its own. It returns the daemon, the
// token file and the front door's URL.
func startFrontDoorDaemon(t *testing.T, config, root string) (p *proc, tokenFile, front string) {
	t.Helper()
	tokenFile = filepath.Join(filepath.Dir(root), "api-token")
	if err := os.WriteFile(tokenFile, []byte("api-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p = startDaemon(t, "run", "--config", config, "--root", root, "--listen", "127.0.0.1:0", "--api-token-file", tokenFile,
		"--log-format", "json", "--grace", testGrace.String(), "--proxy-listen", "127.0.0.1:"+strconv.Itoa(port))
	return p, tokenFile, "http://127.0.0.1:" + strconv.Itoa(port)
}

// startDaemon runs nbh-sync with args and waits for its listening line.
func startDaemon(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{Daemon: testenv.NewDaemon(t), t: t}
	p.Start(args...)
	l := p.WaitLog(0, 2*time.Minute, "listening line", func(l logLine) bool { return l.Msg == "listening" })
	p.addr = l.Str("addr")
	if p.addr == "" {
		t.Fatalf("listening line without addr: %s", l.Raw)
	}
	return p
}

// waitReadyz waits up to timeout for /readyz to answer 200 (the first
// pass is over).
func (p *proc) waitReadyz(timeout time.Duration, what string) {
	p.t.Helper()
	p.WaitReady(timeout, what, func() (bool, string) {
		code := p.getJSON("/readyz", nil)
		return code == http.StatusOK, strconv.Itoa(code)
	})
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
