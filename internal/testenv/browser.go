package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireBrowserEnv makes a missing chromium fail tests instead of skipping
// them (CI sets it).
const RequireBrowserEnv = "NBH_REQUIRE_BROWSER"

// RequireBrowser returns the path of Debian's chromium. Without it the
// test is skipped, or fails when NBH_REQUIRE_BROWSER=1.
func RequireBrowser(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireBrowserEnv) == "1" {
		t.Fatalf("%s=1 but no chromium found (apt-get install chromium)", RequireBrowserEnv)
	}
	t.Skipf("no chromium; install Debian's chromium package or set %s=1 to fail", RequireBrowserEnv)
	return ""
}

// Browser starts chromium (see RequireBrowser), headless, and returns a
// chromedp context of a new tab that ends after timeout (and at cleanup).
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	chromium := RequireBrowser(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancel(); cancelTab(); cancelAlloc() })
	return ctx
}

// Navigate is chromedp.Navigate, tried again (4 more times at most) when
// chromium drops the load with net::ERR_NETWORK_CHANGED. chromium aborts
// page loads whenever the host's network interfaces change, and each
// container the engine starts or removes adds or removes one (its veth):
// on a machine running engine tests beside the browser, that is often.
func Navigate(url string) chromedp.Action[chromedp.Void] {
	nav := chromedp.Navigate(url)
	return func(ctx context.Context, t *chromedp.Target) (v chromedp.Void, err error) {
		for try := range 5 {
			if v, err = nav(ctx, t); err == nil || !strings.Contains(err.Error(), "ERR_NETWORK_CHANGED") {
				return v, err
			}
			// Containers come and go in bursts: wait a little longer
			// each time (1 s, 2 s, …) for the interfaces to settle.
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(time.Duration(try+1) * time.Second):
			}
		}
		return v, err
	}
}

// Land opens url in the tab of ctx and waits until the element sel is
// visible, for at most each; when it is not, it logs what the tab shows
// (address, load state, title, the start of the text) and reloads the
// page, tries times in all. A student on a stuck page reloads it (a launch
// URL's ticket works once: the reload is of where it led). Stuck pages
// happen here: chromium drops loads when the host's interfaces change
// (each container started or removed), and a notebook UI whose scripts
// lost one stays blank, its file list hidden, while the test waits out its
// whole budget and holds its package's other tests. The log says how often
// a reload was needed.
func Land(ctx context.Context, t testing.TB, url, sel string, each time.Duration, tries int) error {
	t.Helper()
	return visible(ctx, t, Navigate(url), sel, each, tries)
}

// Visible is Land for the page the tab is on already (a page that went
// there by itself): it waits for sel, reloading as Land does.
func Visible(ctx context.Context, t testing.TB, sel string, each time.Duration, tries int) error {
	t.Helper()
	return visible(ctx, t, nil, sel, each, tries)
}

func visible(ctx context.Context, t testing.TB, load chromedp.Action[chromedp.Void], sel string, each time.Duration, tries int) error {
	t.Helper()
	wait := chromedp.WaitVisible(chromedp.CSS(sel))
	return retry(ctx, t, sel+" not visible", each, tries, func(try int) []chromedp.Action[chromedp.Void] {
		switch {
		case try > 1:
			return []chromedp.Action[chromedp.Void]{chromedp.Reload(), wait}
		case load != nil:
			return []chromedp.Action[chromedp.Void]{load, wait}
		}
		return []chromedp.Action[chromedp.Void]{wait}
	})
}

// NotebookKernelConnected is true in a classic notebook page (Notebook 6,
// nbclassic) once its kernel's websocket is open.
const NotebookKernelConnected = `window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()`

// Until waits until the JavaScript expression expr is true in the tab of
// ctx, for at most each, then reloads the page and waits again, tries
// times in all, logging what the tab showed: Land's way, for a page whose
// app starts after its load (a notebook's kernel connecting).
func Until(ctx context.Context, t testing.TB, expr string, each time.Duration, tries int) error {
	t.Helper()
	wait := discard(chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(each)))
	// By script: a frame's target cannot be reloaded by command.
	reload := discard(chromedp.Evaluate[any](`location.reload()`))
	return retry(ctx, t, expr+" not true", each, tries, func(try int) []chromedp.Action[chromedp.Void] {
		if try > 1 {
			return []chromedp.Action[chromedp.Void]{reload, wait}
		}
		return []chromedp.Action[chromedp.Void]{wait}
	})
}

// discard is action a, its value dropped: a step of chromedp.Do.
func discard[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := a(ctx, tg)
		return err
	})
}

// retry runs the steps of each try under a deadline of each, tries times
// at most, and logs what the tab showed after each try that failed. The
// tab (or frame) of ctx is opened first, under the test's own deadline:
// chromedp opens or attaches a target at its first action and closes it
// when that action's context ends.
func retry(ctx context.Context, t testing.TB, what string, each time.Duration, tries int, steps func(try int) []chromedp.Action[chromedp.Void]) error {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		return err
	}
	var err error
	for try := 1; try <= tries; try++ {
		tctx, cancel := context.WithTimeout(ctx, each)
		err = chromedp.Do(tctx, steps(try)...)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		logTab(ctx, t, fmt.Sprintf("%s after %s (try %d of %d): %v", what, each, try, tries, err))
	}
	return err
}

// logTab logs what, and where, the tab of ctx shows.
func logTab(ctx context.Context, t testing.TB, what string) {
	t.Helper()
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
		`JSON.stringify({url: location.href, ready: document.readyState, title: document.title, text: (document.body ? document.body.innerText : "").slice(0, 300)})`))
	t.Logf("browser: %s; the tab shows %s", what, state)
}

// ArtifactDir is where a test puts what a person should look at after the
// run (screenshots): $NBH_ARTIFACTS when set, kept after the run, else a
// temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("NBH_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// SlowPoll gives a chromedp.Poll four minutes instead of its default 30 s:
// a kernel that connects on a machine CI keeps busy takes longer, and the
// test's own budget (Browser's) still bounds the whole.
var SlowPoll = chromedp.WithPollingTimeout(4 * time.Minute)
