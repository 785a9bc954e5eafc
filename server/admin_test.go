package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/server/servertest"
)

// fakeOps is a site of two students in one course: alice's server is
// active (refused unless forced), bob's idle.
type fakeOps struct {
	mu    sync.Mutex
	calls []string
	state map[string]string
}

func (f *fakeOps) Student(_ context.Context, course, student, action string, req api.StudentRequest) (api.StudentResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s force=%v", action, student, req.Force))
	if f.state[student] == "running" && student == "alice" && !req.Force {
		return api.StudentResult{}, fmt.Errorf("%w: %s refused: alice's server in %s is active (a kernel is busy); --force (force: true) acts anyway", server.ErrConflict, action, course)
	}
	res := map[string]string{"stop": "stopped", "restart": "restarted", "remove": "removed"}[action]
	f.state[student] = map[string]string{"stop": "stopped", "restart": "running", "remove": "none"}[action]
	return api.StudentResult{Course: course, Student: student, Action: action, Result: res}, nil
}

func (f *fakeOps) Students(_ context.Context, q string) (api.Students, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := api.Students{Students: []api.StudentView{}}
	for _, st := range []string{"alice", "bob"} {
		if strings.Contains(st, q) {
			v := api.StudentView{Course: "intro", Student: st, Container: "intro-x-" + st, State: f.state[st], WorkspaceBytes: 123456,
				LastActivity: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
			if v.State == "running" {
				v.Active, v.Activity = st == "alice", map[bool]string{true: "active (a kernel is busy)", false: "idle for 3h"}[st == "alice"]
			}
			out.Students = append(out.Students, v)
		}
	}
	return out, nil
}

func (f *fakeOps) Suspend(context.Context, string, api.HoldRequest) (api.Holds, error) {
	return api.Holds{}, nil
}
func (f *fakeOps) Resume(context.Context, string, api.HoldRequest) (api.Holds, error) {
	return api.Holds{}, nil
}
func (f *fakeOps) Holds(context.Context) (api.Holds, error) { return api.Holds{}, nil }

// The admin view of the dashboard, in chromium: without the token (or with
// a wrong one) the search is refused and nothing is listed; with it a
// student is found with their server, last activity and workspace size;
// stop of an active student is refused with the reason until "force" is
// ticked; restart and remove go through. Screenshots for the docs.
func TestAdminViewInBrowser(t *testing.T) {
	ctx := testenv.Browser(t, 120*time.Second)
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) { return servertest.SampleStatus(time.Now()), nil }
	ops := &fakeOps{state: map[string]string{"alice": "running", "bob": "running"}}
	srv, err := server.New(server.Config{Backend: be, Token: token, Refresh: time.Hour, Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	var con console
	con.collect(ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), testenv.Navigate(hs.URL+"/"),
		chromedp.Click(chromedp.CSS(`#admin summary`)), chromedp.WaitVisible(chromedp.CSS(`#admin-form`))); err != nil {
		t.Fatal(err)
	}
	msg := func(want string) string {
		t.Helper()
		var got string
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("admin-msg").textContent`))
			if err == nil && strings.Contains(got, want) {
				return got
			}
			if err := chromedp.Do(ctx, chromedp.Sleep(50*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
		}
		t.Fatalf("admin message %q, want %q", got, want)
		return ""
	}
	rows := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#admin-results:not([hidden]) tr.admin-row")).map(r => r.dataset.student + ":" + r.children[2].textContent + ":" + r.children[4].textContent).join(" ")`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	setToken := func(v string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.getElementById("admin-token").value = %q, true)`, v))); err != nil {
			t.Fatal(err)
		}
	}
	search := func(q string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.getElementById("admin-q").value = %q, document.getElementById("admin-search").click(), true)`, q))); err != nil {
			t.Fatal(err)
		}
	}
	click := func(student, action string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector('tr.admin-row[data-student=%q] button[data-action=%q]').click(), true)`, student, action))); err != nil {
			t.Fatal(err)
		}
	}

	for _, tok := range []string{"", "wrong"} {
		setToken(tok)
		search("ali")
		msg("refused: missing or wrong bearer token")
		if r := rows(); r != "" {
			t.Errorf("token %q: rows %q shown", tok, r)
		}
	}
	setToken(token)
	search("")
	msg("2 found")
	if r := rows(); r != "alice:running · active:120.6 KB bob:running · idle:120.6 KB" {
		t.Errorf("rows %q", r)
	}
	click("alice", "stop")
	msg("refused: conflict: stop refused: alice's server in intro is active (a kernel is busy)")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#admin-force`))); err != nil {
		t.Fatal(err)
	}
	click("alice", "stop")
	msg("alice in intro: stopped")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#admin-force`))); err != nil {
		t.Fatal(err)
	}
	click("alice", "restart")
	msg("alice in intro: restarted")
	click("bob", "remove")
	msg("bob in intro: removed")
	desktop, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#admin-section`)))
	if err != nil {
		t.Fatal(err)
	}
	ops.mu.Lock()
	got := strings.Join(ops.calls, ", ")
	ops.mu.Unlock()
	if want := "stop alice force=false, stop alice force=true, restart alice force=false, remove bob force=false"; got != want {
		t.Errorf("calls:\n got  %s\n want %s", got, want)
	}

	// A phone.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.Click(chromedp.CSS(`#admin summary`)), chromedp.WaitVisible(chromedp.CSS(`#admin-form`))); err != nil {
		t.Fatal(err)
	}
	search("")
	msg("2 found")
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil || overflow > 0 {
		t.Errorf("phone: scrolls sideways by %vpx (%v)", overflow, err)
	}
	phone, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#admin-section`)))
	if err != nil {
		t.Fatal(err)
	}
	// The refusals the test asked for are logged by chromium as failed
	// loads; anything else is a problem.
	var problems []string
	for _, p := range con.problems() {
		if !strings.Contains(p, "status of 401") && !strings.Contains(p, "status of 409") {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(problems, "\n"))
	}
	dir := testenv.ArtifactDir(t)
	for name, png := range map[string][]byte{"admin-desktop.png": desktop, "admin-phone.png": phone} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}
