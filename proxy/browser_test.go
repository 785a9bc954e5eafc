package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// evilPage tries to register a service worker for the whole origin, then
// one for its own prefix, and leaves both outcomes in window.swResult.
const evilPage = `<!doctype html><title>alice</title><script>
async function attempt(scope) {
	try {
		const reg = await navigator.serviceWorker.register("sw.js", scope ? {scope} : {});
		const w = reg.installing || reg.waiting || reg.active;
		while (w.state !== "activated") await new Promise(r => w.addEventListener("statechange", r, {once: true}));
		return "registered " + new URL(reg.scope).pathname;
	} catch (e) {
		return "refused: " + e.name;
	}
}
(async () => { window.swResult = [await attempt("/"), await attempt("")]; })();
</script>`

// evilWorker answers every request it controls itself.
const evilWorker = `self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", e => e.waitUntil(clients.claim()));
self.addEventListener("fetch", e => e.respondWith(new Response("<title>hijacked</title>", {headers: {"Content-Type": "text/html"}})));`

// studentServer serves pages titled after their path, and through handle
// what a test adds.
func studentServer(t *testing.T, course, student string, handle map[string]http.HandlerFunc) Route {
	t.Helper()
	base := "/u/" + course + "/" + student + "/"
	mux := http.NewServeMux()
	mux.HandleFunc(base, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!doctype html><title>"+strings.TrimSpace(student+" "+strings.TrimPrefix(r.URL.Path, base))+"</title>")
	})
	for p, h := range handle {
		mux.HandleFunc(base+p, h)
	}
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	port, _ := strconv.Atoi(u.Port())
	return Route{Key: Key{course, student}, Host: u.Host, BasePath: base, Port: port}
}

// One origin serves every student: a student's server must not reach,
// through headers the browser applies to the whole origin, the pages of
// another student opened in the same browser (a lab's shared machine):
// Clear-Site-Data would log them out, and a service worker allowed the
// scope / would answer their requests, launch tickets included.
func TestServiceWorkerStaysInItsPrefix(t *testing.T) {
	ctx := testenv.Browser(t, 90*time.Second)
	alice := studentServer(t, "flot", "alice", map[string]http.HandlerFunc{
		"{$}": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, evilPage)
		},
		"sw.js": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			w.Header().Set("Service-Worker-Allowed", "/")
			io.WriteString(w, evilWorker)
		},
		"clear": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Clear-Site-Data", `"cookies", "storage"`)
			io.WriteString(w, "<!doctype html><title>alice clear</title>")
		},
	})
	bob := studentServer(t, "flot", "bob", nil)
	f := newFront(t, Options{})
	f.Routes().Set(alice)
	f.Routes().Set(bob)

	title := func(t *testing.T, path string) string {
		t.Helper()
		if err := chromedp.Do(ctx, testenv.Navigate(f.URL+path)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := title(t, f.Launch(bob)); got != "bob" {
		t.Fatalf("bob's launch shows %q", got)
	}
	// A ticket is good on any path of its server's prefix.
	if got := title(t, alice.BasePath+"clear?"+strings.SplitN(f.Launch(alice), "?", 2)[1]); got != "alice clear" {
		t.Fatalf("alice's launch shows %q", got)
	}
	if got := title(t, bob.BasePath); got != "bob" {
		t.Errorf("bob's page after alice's Clear-Site-Data shows %q, want bob's page (his session kept)", got)
	}

	if got := title(t, alice.BasePath); got != "alice" {
		t.Fatalf("alice's page shows %q", got)
	}
	res, err := chromedp.Run(ctx, chromedp.Poll[[]string](`window.swResult`, testenv.SlowPoll))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !strings.HasPrefix(res[0], "refused: ") || res[1] != "registered "+alice.BasePath {
		t.Errorf("registrations: %q, want the scope / refused and alice's own prefix registered", res)
	}
	// The worker alice may have is alive (this test sees one at work)…
	if got := title(t, alice.BasePath+"tree"); got != "hijacked" {
		t.Errorf("alice's prefix shows %q, want her worker's answer", got)
	}
	// …and stays out of bob's prefix, his launch URL included.
	if got := title(t, bob.BasePath); got != "bob" {
		t.Errorf("bob's page shows %q, want his server's", got)
	}
	if got := title(t, f.Launch(bob)); got != "bob" {
		t.Errorf("bob's launch shows %q, want his server's", got)
	}
}

// A real notebook UI works through the front door with only the headers
// it lets pass: the tree, a notebook, its kernel's websocket, a cell run.
func TestRealNotebookUIInBrowser(t *testing.T) {
	_, via, f, _ := realFront(t, jupytertest.FlavorNotebook)
	nb := map[string]any{"type": "notebook", "content": map[string]any{
		"nbformat": 4, "nbformat_minor": 4, "metadata": map[string]any{},
		"cells": []any{map[string]any{"cell_type": "code", "source": "print(6 * 7)",
			"metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil}},
	}}
	if err := via.Do(t.Context(), http.MethodPut, "api/contents/ui.ipynb", nb, nil); err != nil {
		t.Fatalf("save: %v", err)
	}
	rt, _ := f.Routes().Lookup(Key{"flot", "alice"})
	ctx := testenv.Browser(t, 15*time.Minute) // chromium, the classic UI and a kernel, on a loaded machine
	if err := testenv.Land(ctx, t, f.URL+f.Launch(rt), `#notebook_list`, 2*time.Minute, 3); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, testenv.Navigate(f.URL+rt.BasePath+"notebooks/ui.ipynb")); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Until(ctx, t, testenv.NotebookKernelConnected, 2*time.Minute, 3); err != nil {
		t.Fatalf("the kernel's websocket did not connect: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`Jupyter.notebook.execute_all_cells()`)); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector(".output_area pre")?.textContent`, testenv.SlowPoll))
	if err != nil {
		t.Fatalf("no output: %v", err)
	}
	if strings.TrimSpace(out) != "42" {
		t.Errorf("the cell printed %q, want 42", out)
	}
}

// The starting page waits for its server in the browser: no timer, an
// event stream that says "ready", then the page it was asked for.
func TestStartingPageWaitsForTheServer(t *testing.T) {
	ctx := testenv.Browser(t, 90*time.Second)
	alice := studentServer(t, "flot", "alice", nil)
	release := make(chan struct{})
	f := newFront(t, Options{StartWait: 10 * time.Millisecond, Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
		select {
		case <-release:
			return alice, nil
		case <-ctx.Done():
			return Route{}, ctx.Err()
		}
	})})
	launch := f.LaunchAt(Route{Key: alice.Key, BasePath: alice.BasePath}, "notebooks/a.ipynb")
	if err := chromedp.Do(ctx, testenv.Navigate(f.URL+launch)); err != nil {
		t.Fatal(err)
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || title != "Starting your server…" {
		t.Fatalf("title %q, %v; want the starting page", title, err)
	}
	// The page holds its event stream open until the server is up.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`ready.readyState === EventSource.OPEN`, testenv.SlowPoll)); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitTitle(t, ctx, "alice notebooks/a.ipynb")
}

// waitTitle waits until the page's title is want, across the navigations
// that may happen meanwhile (each one fails an evaluation running then).
func waitTitle(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	var title string
	var err error
	for title != want {
		title, err = chromedp.Run(ctx, chromedp.Title())
		select {
		case <-ctx.Done():
			t.Fatalf("title %q, %v; want %q", title, err, want)
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}
