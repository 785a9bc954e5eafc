//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/site"
)

// daemon is `nbh-sync run` as a real process, which the test can kill and
// start again on the same root, port and engine.
type daemon struct {
	t      *testing.T
	root   string
	config string
	addr   string
	token  string
	secret string
	docker string // DOCKER_HOST
	http   *http.Client
	// runFlags, when set, are the flags of `run` instead of the ones the
	// fault tests use.
	runFlags []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	lines   []logLine
	changed chan struct{}
	logFile *os.File
	starts  int
}

// logLine is one JSON log record of the daemon.
type logLine struct {
	Time  time.Time
	Msg   string
	Level string
	Raw   string
	Run   int // which start of the process wrote it
}

// newDaemon prepares a daemon on config (a URL), with its own root, port,
// API token and webhook secret, talking to the engine at dockerHost. It
// does not start it.
func newDaemon(t *testing.T, config, dockerHost string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{t: t, root: filepath.Join(dir, "root"), config: config, docker: dockerHost,
		token: "api-" + fjtest.Suffix() + fjtest.Suffix(), secret: "hook-" + fjtest.Suffix() + fjtest.Suffix(),
		http: &http.Client{Timeout: 3 * time.Minute}, changed: make(chan struct{})}
	d.addr = freeAddr(t)
	for name, v := range map[string]string{"token": d.token, "secret": d.secret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.logFile = f
	t.Cleanup(func() {
		d.kill()
		d.checkLog()
		if t.Failed() {
			t.Logf("daemon log (last 60 lines; all in %s):\n%s", keepLog(t, f.Name()), d.tail(60))
		}
		f.Close()
	})
	return d
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs the process and returns at once; waitReady waits for its
// first pass.
func (d *daemon) start() {
	d.t.Helper()
	dir := filepath.Dir(d.root)
	flags := d.runFlags
	if flags == nil {
		flags = []string{"--listen", d.addr, "--api-token-file", d.tokenFile(),
			"--webhook-secret-file", filepath.Join(dir, "secret"), "--grace", "2s"}
	}
	cmd := exec.Command(daemonBin, append([]string{"--config", d.config, "--root", d.root, "--api", "none",
		"--log-format", "json", "--log-level", "info", "run"}, flags...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.docker)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start daemon: %v", err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.starts++
	run := d.starts
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			d.add(sc.Text(), run)
		}
		_ = cmd.Wait()
		close(exited)
	}()
}

func (d *daemon) add(raw string, run int) {
	var rec struct {
		Time  time.Time `json:"time"`
		Msg   string    `json:"msg"`
		Level string    `json:"level"`
	}
	if json.Unmarshal([]byte(raw), &rec) != nil {
		rec.Msg, rec.Time = raw, time.Now() // a panic, a race report
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, logLine{Time: rec.Time, Msg: rec.Msg, Level: rec.Level, Raw: raw, Run: run})
	fmt.Fprintf(d.logFile, "[run %d] %s\n", run, raw)
	close(d.changed)
	d.changed = make(chan struct{})
}

// tokenFile holds the daemon's API token.
func (d *daemon) tokenFile() string { return filepath.Join(filepath.Dir(d.root), "token") }

// repo is the engine repository of the site's builds of image.
func (d *daemon) repo(image string) string {
	return imageref.Repository(site.SiteName(d.root), image)
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// alive reports whether the process runs.
func (d *daemon) alive() bool {
	d.mu.Lock()
	exited := d.exited
	running := d.cmd != nil
	d.mu.Unlock()
	if !running {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// mark returns the number of log lines so far, for waitLog.
func (d *daemon) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

// waitLog waits for a log line after mark that matches, and returns it.
func (d *daemon) waitLog(ctx context.Context, mark int, match func(logLine) bool) (logLine, error) {
	for {
		d.mu.Lock()
		for i := mark; i < len(d.lines); i++ {
			if match(d.lines[i]) {
				l := d.lines[i]
				d.mu.Unlock()
				return l, nil
			}
		}
		mark = len(d.lines)
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return logLine{}, ctx.Err()
		case <-ch:
		}
	}
}

// logSince returns the log lines after mark.
func (d *daemon) logSince(mark int) []logLine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]logLine(nil), d.lines[min(mark, len(d.lines)):]...)
}

func (d *daemon) tail(n int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, l := range d.lines[max(0, len(d.lines)-n):] {
		fmt.Fprintf(&b, "[run %d] %s\n", l.Run, l.Raw)
	}
	return b.String()
}

// checkLog fails the test on a data race or a panic in any run.
func (d *daemon) checkLog() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lines {
		if strings.Contains(l.Raw, "DATA RACE") || strings.HasPrefix(l.Raw, "panic:") || strings.HasPrefix(l.Raw, "fatal error:") {
			d.t.Errorf("daemon run %d: %s", l.Run, l.Raw)
		}
	}
}

// url returns the daemon's URL for path.
func (d *daemon) url(path string) string { return "http://" + d.addr + path }

// call sends a request to the daemon's API (with the bearer token) and
// decodes a 2xx answer into out.
func (d *daemon) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.url(path), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// waitReady waits until /readyz answers (the first pass is over).
func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	eventually(d.t, timeout, "daemon ready", func() (bool, string) {
		if !d.alive() {
			d.t.Fatalf("daemon exited:\n%s", d.tail(30))
		}
		err := d.call(d.t.Context(), http.MethodGet, "/readyz", nil, nil)
		return err == nil, fmt.Sprint(err)
	})
}

func (d *daemon) status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := d.call(ctx, http.MethodGet, "/api/status", nil, &st)
	return st, err
}

func (d *daemon) mustStatus() api.Status {
	d.t.Helper()
	st, err := d.status(d.t.Context())
	if err != nil {
		d.t.Fatalf("status: %v", err)
	}
	return st
}

func (d *daemon) spawn(ctx context.Context, course, student string, uid *int) (api.SpawnResult, error) {
	var res api.SpawnResult
	err := d.call(ctx, http.MethodPost, "/api/spawn", api.SpawnRequest{Course: course, Student: student, UID: uid}, &res)
	return res, err
}

func (d *daemon) mustSpawn(course, student string, uid *int) api.SpawnResult {
	d.t.Helper()
	res, err := d.spawn(d.t.Context(), course, student, uid)
	if err != nil {
		d.t.Fatalf("spawn %s %s: %v", course, student, err)
	}
	return res
}

// sync asks for a pass of the given kinds (a full sync when none).
func (d *daemon) sync(kinds ...string) {
	d.t.Helper()
	if err := d.call(d.t.Context(), http.MethodPost, "/api/sync", api.SyncRequest{Kinds: kinds}, nil); err != nil {
		d.t.Fatalf("sync: %v", err)
	}
}

// hook sends a signed generic webhook for a push to repoURL.
func (d *daemon) hook(repoURL string) api.SyncResult {
	d.t.Helper()
	body, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "repository": map[string]string{"clone_url": repoURL}})
	mac := hmac.New(sha256.New, []byte(d.secret))
	mac.Write(body)
	req, _ := http.NewRequestWithContext(d.t.Context(), http.MethodPost, d.url("/hooks/generic"), bytes.NewReader(body))
	req.Header.Set("X-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	req.Header.Set("X-Event", "push")
	resp, err := d.http.Do(req)
	if err != nil {
		d.t.Fatalf("webhook: %v", err)
	}
	defer resp.Body.Close()
	var res api.SyncResult
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &res) != nil {
		d.t.Fatalf("webhook: %s: %s", resp.Status, b)
	}
	return res
}

// course returns the view of course in st.
func course(st api.Status, name string) (api.CourseView, bool) {
	for _, c := range st.Courses {
		if c.Name == name {
			return c, true
		}
	}
	return api.CourseView{}, false
}

// imageView returns the view of image in st.
func imageView(st api.Status, name string) api.ImageView {
	for _, im := range st.Images {
		if im.Name == name {
			return im
		}
	}
	return api.ImageView{}
}

// eventually polls cond until it holds or timeout passes; detail says
// what was seen last.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var detail string
	for {
		var ok bool
		ok, detail = cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s; last: %s", what, timeout, detail)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// keepLog copies a failed test's daemon log out of its temporary
// directory, which the test removes, and returns where it is.
func keepLog(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	dir := filepath.Join(os.TempDir(), "nbhtest-e2e-logs")
	_ = os.MkdirAll(dir, 0o755)
	out := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("150405")+".log")
	if os.WriteFile(out, b, 0o644) != nil {
		return path
	}
	return out
}
