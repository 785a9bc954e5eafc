package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestFrontDoorProcess runs `nbh-sync run --proxy-listen` on a course whose
// servers (the fake Jupyter, built FROM scratch) use the stable {prefix}
// and a per-student token: the spawn API answers a launch URL; through it a
// browser reaches its server with the token added for it, and not another
// student's; a stopped server comes back on a page load; after a restart,
// the session still works and the route comes from the container pass.
func TestFrontDoorProcess(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	fj := fjtest.Binary(t)
	course := testPrefix + "fd-" + randHex(4)
	cleanupCourse(t, cli, course)

	dir := t.TempDir()
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	fjBytes, err := os.ReadFile(fj)
	if err != nil {
		t.Fatal(err)
	}
	cfg.commit(t, map[string]string{
		"courses.yaml": fmt.Sprintf(`version: 1
schedules:
  pull: "@every 1h"
  reconcile: "@every 1s"
courses:
  %s:
    repo: .
    path: course
    container:
      command: [/fakejupyter, "--base-url={prefix}", "--token=tok-{student}"]
      token: "tok-{student}"
`, course),
		"course/docker-image/nbhosting.Dockerfile": "FROM scratch\nCOPY fakejupyter /fakejupyter\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"course/docker-image/fakejupyter":          string(fjBytes),
	}, "site")
	runGit(t, cfg.dir, "update-index", "--chmod=+x", "course/docker-image/fakejupyter")
	runGit(t, cfg.dir, "commit", "-qm", "executable")

	root := filepath.Join(dir, "root")
	tokenFile := filepath.Join(dir, "api-token")
	if err := os.WriteFile(tokenFile, []byte("api-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	front := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"run", "--config", cfg.dir, "--root", root, "--listen", "127.0.0.1:0", "--api-token-file", tokenFile,
		"--log-format", "json", "--grace", testGrace.String(), "--proxy-listen", "127.0.0.1:" + strconv.Itoa(port)}
	p := startDaemon(t, args...)
	p.waitReadyz(10*time.Minute, "/readyz 200")

	spawn := func(student string) string {
		t.Helper()
		var res struct {
			LaunchURL string `json:"launch_url"`
		}
		// Ready means the first pass ended, not that it succeeded: on a
		// loaded machine the config may come with a later one.
		var code int
		var body string
		testenv.WaitFor(t, 120*time.Second, "spawn "+student, func() bool {
			code, body = p.post("/api/spawn", fmt.Appendf(nil, `{"course":%q,"student":%q}`, course, student),
				map[string]string{"Authorization": "Bearer api-tok"})
			return code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout
		})
		if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
			t.Fatalf("spawn %s: %d %s", student, code, body)
		}
		prefix := front + "/u/" + course + "/" + student + "/?nbh-ticket="
		if !strings.HasPrefix(res.LaunchURL, prefix) {
			t.Fatalf("launch_url %q, want %s…", res.LaunchURL, prefix)
		}
		return res.LaunchURL
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, front+path, nil)
		for _, h := range header {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alice, bob := "/u/"+course+"/alice/", "/u/"+course+"/bob/"

	resp, err := browser.Get(spawn("alice"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.RawQuery != "" {
		t.Errorf("after the launch the address is %s, want the ticket gone", resp.Request.URL)
	}
	// The fake server answers its API only with tok-alice: the proxy sent it.
	if code, body := get(alice + "api/status"); code != http.StatusOK {
		t.Fatalf("alice's api/status through the front door: %d %s", code, body)
	}
	spawn("bob")
	if code, _ := get(bob + "api/status"); code != http.StatusForbidden {
		t.Errorf("alice's browser on bob's server: %d, want 403", code)
	}

	// An idle pass would stop it: a page load brings it back.
	timeout := 5
	if err := cli.ContainerStop(t.Context(), course+"-x-alice", container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "alice's server back through the front door", func() bool {
		code, _ := get(alice+"api/status", "Accept: text/html")
		return code == http.StatusOK
	})

	// A restart: the session key is kept, and the first container pass
	// gives the new process its routes (a script's request does not spawn).
	p.Terminate(testGrace + 10*time.Second)
	p = startDaemon(t, args...)
	testenv.WaitFor(t, 60*time.Second, "alice's route from the first pass after a restart", func() bool {
		code, _ := get(alice + "api/status")
		return code == http.StatusOK
	})
}
