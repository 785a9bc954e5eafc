package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// opsDaemon is `nbh-sync run` with the front door, on one course whose
// servers are the real Jupyter server (jupyter_server, from
// jupytertest.Image) under the stable prefix, each with the token
// tok-STUDENT.
type opsDaemon struct {
	*proc
	bin, course, root, tokenFile, front string
	cli                                 *client.Client
}

func startOpsDaemon(t *testing.T) *opsDaemon {
	t.Helper()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	jupytertest.RequireImage(t, cli, jupytertest.Image)
	bin := testenv.DaemonBinary(t)
	course := testPrefix + "ops-" + randHex(4)
	cleanupCourse(t, cli, course)

	dir := t.TempDir()
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	cfg.commit(t, map[string]string{
		// Passes are rare: the test's actions, not the pass, decide.
		"courses.yaml": fmt.Sprintf(`version: 1
defaults:
  idle: 30m
schedules:
  pull: "@every 1h"
  reconcile: "@every 1h"
courses:
  %s:
    repo: .
    path: course
    container:
      token: "tok-{student}"
      command: [start-in-dir-as-uid.sh, /home/jovyan, "{uid}", jupyter, server, --ip=0.0.0.0, --port=8888,
                --no-browser, "--ServerApp.base_url={prefix}", "--ServerApp.token=tok-{student}"]
`, course),
		"course/docker-image/nbhosting.Dockerfile": "FROM " + jupytertest.Image + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	}, "site")
	root := filepath.Join(dir, "root")
	p, tokenFile, front := startFrontDoorDaemon(t, cfg.dir, root)
	p.waitReadyz(20*time.Minute, "/readyz 200")
	return &opsDaemon{proc: p, bin: bin, course: course, root: root, tokenFile: tokenFile, front: front, cli: cli}
}

var bearer = map[string]string{"Authorization": "Bearer api-tok"}

// spawn spawns a student's server through the API and returns the answer.
func (d *opsDaemon) spawn(student string, uid int) api.SpawnResult {
	d.t.Helper()
	var res api.SpawnResult
	var code int
	var body string
	testenv.WaitFor(d.t, 5*time.Minute, "spawn "+student, func() bool {
		code, body = d.post("/api/spawn", fmt.Appendf(nil, `{"course":%q,"student":%q,"uid":%d}`, d.course, student, uid), bearer)
		return code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout
	})
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
		d.t.Fatalf("spawn %s: %d %s", student, code, body)
	}
	return res
}

// startKernel makes the student's server active, as a student opening a
// notebook does: a kernel whose last activity is now.
func (d *opsDaemon) startKernel(student string, sp api.SpawnResult) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, sp.URL+"api/kernels", strings.NewReader(`{"name":"python3"}`))
	req.Header.Set("Authorization", "token tok-"+student)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		d.t.Fatalf("start a kernel on %s's server: %s", student, resp.Status)
	}
}

// state is the engine's state of the student's container ("" when gone)
// and when it started.
func (d *opsDaemon) state(student string) (string, time.Time) {
	d.t.Helper()
	ci, err := d.cli.ContainerInspect(d.t.Context(), d.course+"-x-"+student)
	if err != nil {
		return "", time.Time{}
	}
	started, _ := time.Parse(time.RFC3339Nano, ci.State.StartedAt)
	return ci.State.Status, started
}

// cli runs the command line against the daemon's API.
func (d *opsDaemon) cliRun(tokenFile string, args ...string) (int, string) {
	d.t.Helper()
	cmd := exec.Command(d.bin, append(args, "--api", "http://"+d.addr, "--api-token-file", tokenFile)...)
	cmd.Env = append(os.Environ(), testenv.GitEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		d.t.Fatal(err)
	}
	return 0, out.String()
}

// TestOperatorsOnRealJupyter: an operator stops, restarts and removes one
// student's real Jupyter server through the API and the command line, and
// a student restarts their own through the front door. Each is refused
// without the API token (or with another student's session), and an
// active student — a kernel just started — is refused without --force,
// with the reason said.
func TestOperatorsOnRealJupyter(t *testing.T) {
	t.Parallel()
	d := startOpsDaemon(t)
	alice, bob := d.spawn("alice", 1000), d.spawn("bob", 1001)
	d.startKernel("alice", alice)
	path := func(student, action string) string { return "/api/students/" + d.course + "/" + student + "/" + action }

	// The API.
	for _, tc := range []struct {
		name    string
		path    string
		body    string
		headers map[string]string
		code    int
		want    string
	}{
		{"no token", path("alice", "stop"), "", nil, http.StatusUnauthorized, "bearer token"},
		{"wrong token", path("alice", "stop"), "", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, "bearer token"},
		{"active refused", path("alice", "stop"), "", bearer, http.StatusConflict, "stop refused: alice's server in " + d.course + " is active ("},
		{"remove active refused", path("alice", "remove"), "", bearer, http.StatusConflict, "--force"},
		{"unknown action", path("alice", "kill"), "", bearer, http.StatusNotFound, "stop, restart or remove"},
		{"workspace unconfirmed", path("alice", "remove"), `{"workspace":true}`, bearer, http.StatusBadRequest, "confirm with yes"},
		{"forced", path("alice", "stop"), `{"force":true}`, bearer, http.StatusOK, `"result": "stopped"`},
		{"stopped: restart", path("alice", "restart"), "", bearer, http.StatusOK, `"result": "restarted"`},
		{"search needs the token", "/api/students?q=ali", "", nil, http.StatusUnauthorized, "bearer token"},
		{"suspend needs the token", "/api/courses/" + d.course + "/suspend", "", nil, http.StatusUnauthorized, "bearer token"},
	} {
		t.Run("api "+tc.name, func(t *testing.T) {
			var code int
			var body string
			if strings.HasPrefix(tc.path, "/api/students?") {
				req, _ := http.NewRequest(http.MethodGet, d.url(tc.path), nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, body = resp.StatusCode, string(b)
			} else {
				code, body = d.post(tc.path, []byte(tc.body), tc.headers)
			}
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s\nwant %d with %q", code, body, tc.code, tc.want)
			}
		})
		if tc.name == "forced" {
			if st, _ := d.state("alice"); st != "exited" {
				t.Errorf("alice's container after a forced stop: %s", st)
			}
		}
	}
	if st, _ := d.state("alice"); st != "running" {
		t.Errorf("alice's container after restart: %q, want running", st)
	}

	// The command line.
	d.startKernel("bob", bob)
	for _, tc := range []struct {
		name  string
		token string
		args  []string
		code  int
		want  string
	}{
		{"no token", filepath.Join(t.TempDir(), "none"), []string{"stop", d.course, "bob"}, 1, "401"},
		{"active refused", d.tokenFile, []string{"stop", d.course, "bob"}, 1, "stop refused: bob's server in " + d.course + " is active"},
		{"forced", d.tokenFile, []string{"stop", d.course, "bob", "--force"}, 0, d.course + "/bob: stopped"},
		{"workspace unconfirmed", d.tokenFile, []string{"remove", d.course, "bob", "--workspace"}, 1, "confirm with --yes"},
		{"remove with the workspace", d.tokenFile, []string{"remove", d.course, "bob", "--workspace", "--yes"}, 0, "workspace moved to " + rootdir.Trash(d.root)},
		{"suspend", d.tokenFile, []string{"suspend", d.course, "--reason", "audit"}, 0, d.course + ": on hold (runtime"},
		{"resume", d.tokenFile, []string{"resume", d.course}, 0, "no course on hold"},
	} {
		t.Run("cli "+tc.name, func(t *testing.T) {
			code, out := d.cliRun(tc.token, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d: %s\nwant exit %d with %q", code, out, tc.code, tc.want)
			}
		})
	}
	if st, _ := d.state("bob"); st != "" {
		t.Errorf("bob's container after remove: %q, want gone", st)
	}
	if _, err := os.Stat(rootdir.StudentCourse(d.root, "bob", d.course)); !os.IsNotExist(err) {
		t.Errorf("bob's workspace still in place after remove --workspace (%v)", err)
	}

	// The front door: alice's browser, with her session.
	alice = d.spawn("alice", 1000)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 2 * time.Minute}
	resp, err := browser.Get(alice.LaunchURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	aliceBase, bobBase := "/u/"+d.course+"/alice/", "/u/"+d.course+"/bob/"
	_, before := d.state("alice")
	for _, tc := range []struct {
		name, method, path, origin string
		code                       int
		want                       string
	}{
		{"the button", http.MethodGet, aliceBase + "_nbh/restart", "", http.StatusOK, "Restart my server"},
		{"another student's", http.MethodPost, bobBase + "_nbh/restart", d.front, http.StatusForbidden, ""},
		{"cross-site", http.MethodPost, aliceBase + "_nbh/restart", "http://evil.example", http.StatusForbidden, "Cross-site"},
		{"her own", http.MethodPost, aliceBase + "_nbh/restart", d.front, http.StatusOK, ""},
	} {
		t.Run("front door "+tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, d.front+tc.path, nil)
			req.Header.Set("Accept", "text/html")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Errorf("%s %s: %d %.300s\nwant %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.want)
			}
			if tc.name == "her own" && resp.Request.URL.Path != aliceBase+"tree" && !strings.HasPrefix(resp.Request.URL.Path, aliceBase) {
				t.Errorf("after the restart the browser is at %s, want her server", resp.Request.URL)
			}
		})
	}
	if st, after := d.state("alice"); st != "running" || !after.After(before) {
		t.Errorf("alice's server after her restart: %s, started %s (before: %s)", st, after, before)
	}

	// The dashboard's admin view, in chromium, on the same real servers:
	// nothing without the token, a refusal for the active student, then a
	// forced stop and a restart.
	d.startKernel("alice", d.spawn("alice", 1000))
	dashboardActions(t, d)

	// Every action is in the history, with who asked.
	var h api.History
	d.getJSON("/api/history?kind=action&limit=50", &h)
	seen := map[string]bool{}
	for _, r := range h.Records {
		seen[r.Action+" "+r.Student+" "+r.Result] = true
	}
	for _, want := range []string{"operator-stop alice stopped", "operator-restart alice restarted", "operator-stop bob stopped",
		"operator-remove bob removed", "suspend  done", "resume  done", "operator-stop alice stopped", "operator-restart alice restarted"} {
		if !seen[want] {
			t.Errorf("history lacks %q: %v", want, seen)
		}
	}
}

// dashboardActions drives the admin view of the daemon's dashboard in
// chromium: a search without the token is refused and lists nobody; with
// it alice is found running and active; stop is refused with the reason
// until "force" is ticked; then restart brings her server back.
func dashboardActions(t *testing.T, d *opsDaemon) {
	t.Helper()
	ctx := testenv.Browser(t, 15*time.Minute)
	if err := chromedp.Do(ctx, testenv.Navigate(d.url("/")), chromedp.Click(chromedp.CSS(`#admin summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#admin-form`))); err != nil {
		t.Fatal(err)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// An action on a real server takes seconds; on a starved machine a
	// forced stop took over two minutes.
	wait := func(want string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Minute, "admin message "+want, func() (bool, string) {
			got := eval(`document.getElementById("admin-msg").textContent`)
			return strings.Contains(got, want), got
		})
	}
	search := func(tok, q string) {
		eval(fmt.Sprintf(`(document.getElementById("admin-token").value = %q, document.getElementById("admin-q").value = %q,
			document.getElementById("admin-search").click(), "")`, tok, q))
	}
	click := func(action string) {
		eval(fmt.Sprintf(`(document.querySelector('tr.admin-row[data-student="alice"] button[data-action=%q]').click(), "")`, action))
	}
	search("", "alice")
	wait("refused: missing or wrong bearer token")
	search("api-tok", "alice")
	wait("1 found")
	if row := eval(`document.querySelector("tr.admin-row").textContent`); !strings.Contains(row, "running · active") {
		t.Errorf("alice's row: %q, want her server running and active", row)
	}
	click("stop")
	wait("stop refused: alice's server in " + d.course + " is active")
	if st, _ := d.state("alice"); st != "running" {
		t.Errorf("alice's server after a refused stop: %s", st)
	}
	eval(`(document.getElementById("admin-force").click(), "")`)
	click("stop")
	wait("alice in " + d.course + ": stopped (forced: active")
	if st, _ := d.state("alice"); st != "exited" {
		t.Errorf("alice's server after a forced stop from the dashboard: %s", st)
	}
	click("restart")
	wait("alice in " + d.course + ": restarted")
	if st, _ := d.state("alice"); st != "running" {
		t.Errorf("alice's server after a restart from the dashboard: %s", st)
	}
}
