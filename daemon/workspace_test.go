package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestResetAndShareProcess runs `nbh-sync run --proxy-listen` on a course
// served by the real Jupyter server (jupyter_server 2 with every container
// default): a student's first spawn gives them their copy of the course;
// the API and the command line (talking to the daemon) reset a notebook —
// the course's version back, the student's beside it — and share one: the
// front door serves nbconvert's HTML at the address answered, in a
// sandbox, and nothing at a guessed one.
func TestResetAndShareProcess(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	jupytertest.RequireImage(t, cli, jupytertest.Image2)
	bin := testenv.DaemonBinary(t)
	course := testPrefix + "ws-" + randHex(4)
	cleanupCourse(t, cli, course)

	dir := t.TempDir()
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	lesson := `{"cells": [{"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, "outputs": [], "source": ["print('course')"]}],
 "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
`
	cfg.commit(t, map[string]string{
		"courses.yaml":                 fmt.Sprintf("version: 1\nschedules:\n  pull: \"@every 1h\"\n  reconcile: \"@every 1h\"\ncourses:\n  %s:\n    repo: .\n    path: course\n", course),
		"course/.nbhosting/Dockerfile": "FROM " + jupytertest.Image2 + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"course/lesson.ipynb":          lesson,
	}, "site")

	root := filepath.Join(dir, "root")
	p, tokenFile, front := startFrontDoorDaemon(t, cfg.dir, root)
	p.waitReadyz(10*time.Minute, "/readyz 200")
	auth := map[string]string{"Authorization": "Bearer api-tok"}

	var code int
	var body string
	testenv.WaitFor(t, 10*time.Minute, "spawn", func() bool {
		code, body = p.post("/api/spawn", fmt.Appendf(nil, `{"course":%q,"student":"alice","uid":1234}`, course), auth)
		return code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout
	})
	if code != http.StatusOK {
		t.Fatalf("spawn: %d %s", code, body)
	}
	work := filepath.Join(root, "students", "alice", course)
	if b, err := os.ReadFile(filepath.Join(work, "lesson.ipynb")); err != nil || string(b) != lesson {
		t.Fatalf("the student's copy after the first spawn: %q, %v", b, err)
	}

	// The student's edit, then a reset through the API.
	mine := strings.Replace(lesson, "print('course')", "print('mine')", 1)
	if err := os.WriteFile(filepath.Join(work, "lesson.ipynb"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body = p.post("/api/reset", fmt.Appendf(nil, `{"course":%q,"student":"alice","path":"lesson.ipynb"}`, course), auth)
	var reset struct{ Path, Beside string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &reset) != nil || reset.Beside == "" {
		t.Fatalf("reset: %d %s", code, body)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "lesson.ipynb")); string(b) != lesson {
		t.Errorf("after the reset: %q, want the course's", b)
	}
	if b, _ := os.ReadFile(filepath.Join(work, reset.Beside)); string(b) != mine {
		t.Errorf("beside: %q, want the student's", b)
	}
	code, body = p.post("/api/reset", fmt.Appendf(nil, `{"course":%q,"student":"alice","path":"nope.ipynb"}`, course), auth)
	if code != http.StatusNotFound {
		t.Errorf("reset of a file the course has not: %d %s, want 404", code, body)
	}

	// The command line talks to the daemon: a reset again, and a share.
	nbh := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--api", "http://" + p.addr, "--api-token-file", tokenFile, "--log-level", "warn"}, args...)...)
		cmd.Env = append(os.Environ(), testenv.GitEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nbh-sync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if err := os.WriteFile(filepath.Join(work, "lesson.ipynb"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := nbh("reset", course, "alice", "lesson.ipynb"); !strings.Contains(out, "the student's is beside it") {
		t.Errorf("nbh-sync reset: %s", out)
	}
	var shared struct{ Token, URL string }
	if err := json.Unmarshal([]byte(nbh("share", course, "alice", reset.Beside, "--json")), &shared); err != nil || !strings.HasPrefix(shared.URL, front+"/share/") {
		t.Fatalf("nbh-sync share: %+v, %v", shared, err)
	}
	get := func(u string) (int, http.Header, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, h, page := get(shared.URL)
	if code != http.StatusOK || !strings.Contains(page, "mine") || !strings.HasPrefix(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("the share through the front door: %d %q\n%.300s", code, h.Get("Content-Security-Policy"), page)
	}

	// The API's share, and a guessed address.
	code, body = p.post("/api/share", fmt.Appendf(nil, `{"course":%q,"student":"alice","path":"lesson.ipynb"}`, course), auth)
	if code != http.StatusOK || !strings.Contains(body, `"url": "`+front+`/share/`) {
		t.Fatalf("share: %d %s", code, body)
	}
	if code, _, _ := get(front + "/share/" + strings.Repeat("A", 43)); code != http.StatusNotFound {
		t.Errorf("a guessed share: %d, want 404", code)
	}
	if out := nbh("why", course, "alice"); !strings.Contains(out, "workspace of alice") || !strings.Contains(out, "last share") {
		t.Errorf("nbh-sync why: %s", out)
	}
}
