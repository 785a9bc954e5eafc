package proxy

import (
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// A learning platform's page frames a student's notebook: the page of an
// allowed origin shows it — the notebook opens in the frame, its kernel's
// websocket connects with the frame's session, a cell runs — and a page
// of another origin cannot. Three loopback sites: the platform at
// http://localhost, the front door at http://127.0.0.1, another site at
// http://127.0.0.2 (chromium counts loopback hosts as secure, so the
// frame's Secure cookie needs no TLS here).
func TestNotebookInAnLMSFrame(t *testing.T) {
	lms, lmsFrame := framingPage(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(lms.Listener.Addr().String())
	lmsOrigin := "http://localhost:" + port
	other, otherFrame := framingPage(t, "127.0.0.2:0")

	_, via, f, _ := realFrontWith(t, jupytertest.FlavorServer2,
		Options{FrameAncestors: []string{lmsOrigin}, SecureCookies: true, Scheme: "http"})
	if err := via.Do(t.Context(), http.MethodPut, "api/contents/lesson.ipynb", notebookOf("print(6 * 7)"), nil); err != nil {
		t.Fatalf("save: %v", err)
	}
	rt, _ := f.Routes().Lookup(Key{"flot", "alice"})
	browser := testenv.Browser(t, 15*time.Minute)

	t.Run("allowed", func(t *testing.T) {
		*lmsFrame = f.URL + f.LaunchAt(rt, "notebooks/lesson.ipynb")
		frame := openFramed(t, browser, lmsOrigin+"/course", f.URL+rt.BasePath)
		if err := testenv.Until(frame, t, testenv.NotebookKernelConnected, 2*time.Minute, 3); err != nil {
			t.Fatalf("the notebook's kernel did not connect inside the frame: %v", err)
		}
		if _, err := chromedp.Run(frame, chromedp.Evaluate[any](`Jupyter.notebook.execute_all_cells()`)); err != nil {
			t.Fatal(err)
		}
		out, err := chromedp.Run(frame, chromedp.Poll[string](`document.querySelector(".output_area pre")?.textContent`, testenv.SlowPoll))
		if err != nil || strings.TrimSpace(out) != "42" {
			t.Errorf("the cell printed %q, %v; want 42", out, err)
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		*otherFrame = f.URL + f.LaunchAt(rt, "notebooks/lesson.ipynb")
		frame := openFramed(t, browser, other.URL+"/course", f.URL+rt.BasePath)
		// Chromium puts an error page of its own in a frame it refused.
		if _, err := chromedp.Run(frame, chromedp.Poll[bool](`location.href === "chrome-error://chromewebdata/"`, testenv.SlowPoll)); err != nil {
			href, _ := chromedp.Run(frame, chromedp.Evaluate[string](`location.href + " " + document.title`))
			t.Fatalf("the frame shows %q, want chromium's refusal: %v", href, err)
		}
	})
}

// framingPage serves, on addr, a page with an iframe of *src.
func framingPage(t *testing.T, addr string) (*httptest.Server, *string) {
	t.Helper()
	src := new(string)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<!doctype html><title>course page</title><h1>Week 1</h1>`+
			`<iframe src="`+html.EscapeString(*src)+`" width="1000" height="700"></iframe>`)
	}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.Listener = ln
	s.Start()
	t.Cleanup(s.Close)
	return s, src
}

// openFramed opens page in a new tab of browser and returns a context of
// its frame from prefix (a target of its own: another site's frame runs
// in another process).
func openFramed(t *testing.T, browser context.Context, page, prefix string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab, testenv.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	for {
		targets, err := chromedp.Targets(tab)
		if err != nil {
			t.Fatal(err)
		}
		for _, ti := range targets {
			if ti.Type == "iframe" && strings.HasPrefix(ti.URL, prefix) {
				frame, cancel := chromedp.NewContext(tab, chromedp.WithTargetID(ti.TargetID))
				t.Cleanup(cancel)
				return frame
			}
		}
		select {
		case <-tab.Done():
			t.Fatalf("no frame of %s in %s", prefix, page)
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// notebookOf is a notebook of one code cell, as the contents API takes it.
func notebookOf(source string) map[string]any {
	return map[string]any{"type": "notebook", "content": map[string]any{
		"nbformat": 4, "nbformat_minor": 4, "metadata": map[string]any{},
		"cells": []any{map[string]any{"cell_type": "code", "source": source,
			"metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil}},
	}}
}
