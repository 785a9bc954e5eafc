//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/site"
)

// daemon is `nbh-sync run` as a real process, which the test can kill and
// start again on the same root, port and engine.
type daemon struct {
	*testenv.Daemon
	t      *testing.T
	root   string
	config string
	addr   string
	token  string
	secret string
	http   *http.Client
	// runFlags, when set, are the flags of `run` instead of the ones the
	// fault tests use.
	runFlags []string
}

// logLine is one log line of the daemon.
type logLine = testenv.LogLine

// newDaemon prepares a daemon on config (a URL), with its own root, port,
// API token and webhook secret, talking to the engine at dockerHost. It
// does not start it.
func newDaemon(t *testing.T, config, dockerHost string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{Daemon: testenv.NewDaemon(t, "DOCKER_HOST="+dockerHost), t: t, root: filepath.Join(dir, "root"), config: config,
		token: "api-" + fjtest.Suffix() + fjtest.Suffix(), secret: "hook-" + fjtest.Suffix() + fjtest.Suffix(),
		http: &http.Client{Timeout: 3 * time.Minute}}
	d.addr = freeAddr(t)
	for name, v := range map[string]string{"token": d.token, "secret": d.secret} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
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
	d.Start(append([]string{"--config", d.config, "--root", d.root, "--api", "none",
		"--log-format", "json", "--log-level", "info", "run"}, flags...)...)
}

// tokenFile holds the daemon's API token.
func (d *daemon) tokenFile() string { return filepath.Join(filepath.Dir(d.root), "token") }

// repo is the engine repository of the site's builds of image.
func (d *daemon) repo(image string) string {
	return imageref.Repository(site.SiteName(d.root), image)
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
	d.WaitReady(timeout, "daemon ready", func() (bool, string) {
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

// mustSpawn spawns, or fails the test. A server that did not answer
// within the spawn's 2 minutes is asked for once more, as its student
// would: on a starved machine a Swarm task once took longer to start.
func (d *daemon) mustSpawn(course, student string, uid *int) api.SpawnResult {
	d.t.Helper()
	res, err := d.spawn(d.t.Context(), course, student, uid)
	if err != nil && strings.Contains(err.Error(), "did not answer in time") {
		d.t.Logf("spawn %s %s: %v; the student asks again", course, student, err)
		res, err = d.spawn(d.t.Context(), course, student, uid)
	}
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
