package site

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/proxy"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// studentTokens gives each server the token its course sets: tok-STUDENT.
type studentTokens struct{}

func (studentTokens) TokenFor(_, student string) string { return "tok-" + student }

// TestFrontDoorTrafficHoldsServer: a server without kernels (the fake
// Jupyter, in a container of a course built by the site) reached through
// the front door, whose traffic the site's passes read. While a websocket
// is open through the front door — one the server itself counts nowhere —
// a pass past the idle time keeps the server and says why; once it has
// closed and the idle time has passed, a pass stops the server.
func TestFrontDoorTrafficHoldsServer(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDocker(t)
	ctx := t.Context()
	fj, err := os.ReadFile(fjtest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	course := "nbhtest-fdt-" + fjtest.Suffix()
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, course) })
	fjtest.CleanupContainers(t, cli, course+naming.Sep)

	cfgDir, root := t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"courses.yaml": fmt.Sprintf(`version: 1
defaults:
  idle: %s
courses:
  %s:
    repo: .
    path: course
    container:
      command: [/fakejupyter, "--base-url={prefix}", "--token=tok-{student}"]
      token: "tok-{student}"
`, testIdle, course),
		"course/docker-image/nbhosting.Dockerfile": "FROM scratch\nCOPY fakejupyter /fakejupyter\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"course/docker-image/fakejupyter":          string(fj),
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(cfgDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(p, "/fakejupyter") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(cfgDir, p), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, cfgDir, "init", "-q", "-b", "main")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "site")

	key := []byte("0123456789abcdef0123456789abcdef")
	front, err := proxy.New(proxy.Options{Key: key, Tokens: studentTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: cfgDir, Root: root, Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Traffic: front})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatalf("sync: %v", err)
	}
	sp, err := s.Spawn(ctx, course, "alice", "1234")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(sp.URL)
	if err != nil {
		t.Fatal(err)
	}
	rt := proxy.Route{Key: proxy.Key{Course: course, Student: "alice"}, Host: u.Host, BasePath: sp.BasePath, Port: sp.Port, UID: sp.UID}
	front.Routes().Set(rt)
	srv := httptest.NewServer(front)
	defer srv.Close()
	settled(t, s, "alice")

	// The browser: launched, then a websocket open through the front door.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Get(srv.URL + front.Launch(rt))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp, err = browser.Get(srv.URL + sp.BasePath + "api/status"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("api/status through the front door after the launch: %s", resp.Status)
	}
	wsURL, _ := url.Parse(srv.URL + sp.BasePath + "fake/ws")
	cfg, err := websocket.NewConfig(strings.Replace(wsURL.String(), "http", "ws", 1), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = http.Header{}
	for _, c := range jar.Cookies(wsURL) {
		cfg.Header.Add("Cookie", c.String())
	}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		t.Fatalf("websocket through the front door: %v", err)
	}
	defer ws.Close()
	if _, err := ws.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ws, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the front door: %q, %v", buf, err)
	}

	defer func(old func() time.Time) { s.clock = old }(s.clock)
	s.clock = func() time.Time { return time.Now().Add(pastIdle) }
	pass := func() reconcile.Action {
		t.Helper()
		rep, err := s.Pass(ctx, PassOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return actionFor(rep.Actions, "alice")
	}
	if a := pass(); a.Kind != reconcile.Keep || !strings.Contains(a.Reason, "front door: last request 15 min ago, 1 websocket open") {
		t.Fatalf("%s on (idle: %s) with a websocket open: %s (%s); want keep, held by the front door", pastIdle, testIdle, a.Kind, a.Reason)
	}
	if c, err := s.ctrs.Get(ctx, course, "alice"); err != nil || c.State != containers.Running {
		t.Fatalf("after the pass that kept it: %+v, %v", c, err)
	}

	ws.Close()
	deadline := time.Now().Add(30 * time.Second)
	for tr, _ := front.Traffic(course, "alice"); tr.Websockets != 0; tr, _ = front.Traffic(course, "alice") {
		if time.Now().After(deadline) {
			t.Fatalf("the front door still counts %d websockets after the close", tr.Websockets)
		}
		time.Sleep(10 * time.Millisecond)
	}
	a := pass()
	if a.Kind != reconcile.Stop || !strings.Contains(a.Reason, "no kernel, idle for 15m0s (front door: last request 15 min ago)") {
		t.Fatalf("%s after the websocket closed: %s (%s); want stop as idle", pastIdle, a.Kind, a.Reason)
	}
	if c, err := s.ctrs.Get(ctx, course, "alice"); err != nil || c.State != containers.Stopped {
		t.Fatalf("after the pass: %+v, %v; want stopped", c, err)
	}
}
