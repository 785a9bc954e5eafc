package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/server/servertest"
)

// console collects what the page wrote to its console (console API calls,
// uncaught exceptions, browser log entries such as failed loads or CSP
// violations).
type console struct {
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (c *console) collect(ctx context.Context) {
	msgs := chromedp.Console(ctx) // subscribes now, before any navigation
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
		}
	}()
}

// problems returns the errors, warnings and exceptions seen so far.
func (c *console) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.msgs {
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
			out = append(out, m.String()+" @ "+m.URL)
		}
	}
	return out
}

func (c *console) reset() { c.mu.Lock(); c.msgs = nil; c.mu.Unlock() }

func TestDashboardInBrowser(t *testing.T) {
	ctx := testenv.Browser(t, 90*time.Second)
	now := time.Now()
	var statusCalls atomic.Int64
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) {
		statusCalls.Add(1)
		return servertest.SampleStatus(now), nil
	}
	s, err := server.New(server.Config{Backend: be, Token: token, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	// The canary proves that the console listener hears errors at all, so
	// that "no error on the dashboard" is not vacuous.
	mux.HandleFunc("GET /canary", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!DOCTYPE html><title>canary</title><link rel="icon" href="data:,"><script>console.error("canary-error"); throw new Error("canary-exception");</script>`))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	con := &console{}
	con.collect(ctx)

	// Canary first.
	if err := chromedp.Do(ctx, testenv.Navigate(ts.URL+"/canary")); err != nil {
		t.Fatalf("navigate canary: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, "the canary's console messages", func() bool {
		p := strings.Join(con.problems(), "\n")
		return strings.Contains(p, "canary-error") && strings.Contains(p, "canary-exception")
	})
	con.reset()

	// The dashboard, desktop size.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		testenv.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`article.course[data-course="python-intro"]`)),
	); err != nil {
		t.Fatalf("load dashboard: %v", err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil || !strings.HasPrefix(title, "nbh-sync") {
		t.Errorf("title = %q, %v", title, err)
	}

	type bar struct {
		Course string  `json:"course"`
		Share  float64 `json:"share"` // rendered width of the fill / width of the track
		Text   string  `json:"text"`
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]bar](`Array.from(document.querySelectorAll("article.course")).map(c => {
		const track = c.querySelector(".bar");
		if (!track) return {course: c.dataset.course, share: -1, text: c.innerText}; // no containers, no bar
		const fill = track.querySelector("span");
		return {course: c.dataset.course,
			share: fill.getBoundingClientRect().width / track.getBoundingClientRect().width,
			text: c.innerText};
	})`))
	if err != nil {
		t.Fatalf("read bars: %v", err)
	}
	// -1: no bar, for a course without containers.
	want := map[string]float64{"flotpython": 0.75, "ds-handbook": -1, "python-intro": 0}
	if len(bars) != len(want) {
		t.Fatalf("courses shown: %+v", bars)
	}
	for _, b := range bars {
		w, ok := want[b.Course]
		if !ok || b.Share < w-0.01 || b.Share > w+0.01 {
			t.Errorf("course %s: bar at %.3f of its track, want %.2f", b.Course, b.Share, w)
		}
		if !strings.Contains(b.Text, "branch") || !strings.Contains(b.Text, "build key") {
			t.Errorf("course %s card lacks branch/build key: %q", b.Course, b.Text)
		}
	}

	// Build logs open on click.
	logVisible, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const d = document.querySelector("details.build"); d.querySelector("summary").click();
		const pre = d.querySelector("pre");
		return d.open && pre.getBoundingClientRect().height > 0 && pre.innerText.includes("numpyy");
	})()`))
	if err != nil || !logVisible {
		t.Errorf("build log did not open: %v", err)
	}
	desktop, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}

	// Phone size: no horizontal scrolling, cards stacked.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`article.course`)),
	); err != nil {
		t.Fatalf("phone view: %v", err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
	if err != nil || overflow > 0 {
		t.Errorf("phone view scrolls sideways by %vpx (%v)", overflow, err)
	}
	phone, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("phone screenshot: %v", err)
	}

	if p := con.problems(); len(p) > 0 {
		t.Errorf("console problems on the dashboard:\n%s", strings.Join(p, "\n"))
	}

	dir := testenv.ArtifactDir(t)
	for name, png := range map[string][]byte{"dashboard-desktop.png": desktop, "dashboard-phone.png": phone} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}

// TestDashboardRefreshesItself checks that the inline refresh script runs
// under the page's Content-Security-Policy: the page asks for a new status
// by itself.
func TestDashboardRefreshesItself(t *testing.T) {
	ctx := testenv.Browser(t, 60*time.Second)
	var statusCalls atomic.Int64
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) {
		statusCalls.Add(1)
		return servertest.SampleStatus(time.Now()), nil
	}
	s, err := server.New(server.Config{Backend: be, Refresh: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	con := &console{}
	con.collect(ctx)
	if err := chromedp.Do(ctx, testenv.Navigate(ts.URL+"/")); err != nil {
		t.Fatal(err)
	}
	first := statusCalls.Load()
	testenv.WaitFor(t, 30*time.Second, "two self-refreshes", func() bool { return statusCalls.Load() >= first+2 })
	if p := con.problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}
