package activity

import (
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fakeServer(t *testing.T, token string, ks []fakejupyter.Kernel) (*httptest.Server, *fakejupyter.Server) {
	t.Helper()
	fj := fakejupyter.New("/30000/", token, ks)
	srv := httptest.NewServer(fj)
	t.Cleanup(srv.Close)
	return srv, fj
}

func testProber() *Prober {
	p := New()
	p.Timeout = time.Second
	p.SecondLook = 10 * time.Millisecond
	p.Now = func() time.Time { return t0 }
	return p
}

// closedURL is a base URL where nothing listens.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/30000/"
}

func TestProbe(t *testing.T) {
	busy, _ := fakeServer(t, "", []fakejupyter.Kernel{
		{ID: "k1", LastActivity: t0.Add(-3 * time.Hour), ExecutionState: "busy"},
		{ID: "k2", LastActivity: t0.Add(-4 * time.Hour), ExecutionState: "idle"},
	})
	idle, _ := fakeServer(t, "", []fakejupyter.Kernel{
		{ID: "k1", LastActivity: t0.Add(-3 * time.Hour), ExecutionState: "idle"},
		{ID: "k2", LastActivity: t0.Add(-20 * time.Minute), ExecutionState: "idle"},
	})
	none, _ := fakeServer(t, "", nil)
	tok, _ := fakeServer(t, "s3cret", []fakejupyter.Kernel{{ID: "k", LastActivity: t0.Add(-time.Minute), ExecutionState: "idle"}})
	down := closedURL(t)

	for _, tc := range []struct {
		desc   string
		target Target
		want   Result
	}{
		{"a busy kernel", Target{URL: busy.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour)},
			Result{State: Answered, Busy: true, Kernels: 2, LastActivity: t0.Add(-3 * time.Hour)}},
		{"latest kernel activity", Target{URL: idle.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour)},
			Result{State: Answered, Kernels: 2, LastActivity: t0.Add(-20 * time.Minute)}},
		{"no kernel: idle since start", Target{URL: none.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour)},
			Result{State: Answered, LastActivity: t0.Add(-5 * time.Hour)}},
		{"kernels older than the server: idle since start", Target{URL: idle.URL + "/30000/", StartedAt: t0.Add(-time.Minute)},
			Result{State: Answered, Kernels: 2, LastActivity: t0.Add(-time.Minute)}},
		{"no kernel, handed out since the start: idle since the hand-out", Target{URL: none.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour), HandedOut: t0.Add(-10 * time.Minute)},
			Result{State: Answered, LastActivity: t0.Add(-10 * time.Minute)}},
		{"a kernel used after the hand-out", Target{URL: idle.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour), HandedOut: t0.Add(-time.Hour)},
			Result{State: Answered, Kernels: 2, LastActivity: t0.Add(-20 * time.Minute)}},
		{"token sent", Target{URL: tok.URL + "/30000/", Token: "s3cret", StartedAt: t0.Add(-time.Hour)},
			Result{State: Answered, Kernels: 1, LastActivity: t0.Add(-time.Minute)}},
		{"recent and not answering: starting", Target{URL: down, StartedAt: t0.Add(-30 * time.Second)},
			Result{State: Starting}},
		{"old and not answering twice: unreachable", Target{URL: down, StartedAt: t0.Add(-5 * time.Hour)},
			Result{State: Unreachable, LastActivity: t0.Add(-5 * time.Hour)}},
	} {
		tc.target.ID = "c"
		got := testProber().Probe(t.Context(), []Target{tc.target})["c"]
		got = summary(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
	}

	// A wrong token: the server answers, but nothing can be concluded.
	got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: tok.URL + "/30000/", Token: "wrong", StartedAt: t0.Add(-5 * time.Hour)}})["c"]
	if got.State != Unknown || got.Idle(t0, time.Minute) || got.Err == "" {
		t.Errorf("wrong token: %+v", got)
	}
}

func TestIdle(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want bool
	}{
		{Result{State: Answered, LastActivity: t0.Add(-2 * time.Hour)}, true},
		{Result{State: Answered, LastActivity: t0.Add(-time.Hour)}, false},
		{Result{State: Answered, Busy: true, LastActivity: t0.Add(-5 * time.Hour)}, false},
		{Result{State: Unreachable, LastActivity: t0.Add(-5 * time.Hour)}, true},
		{Result{State: Starting}, false},
		{Result{State: Unknown, LastActivity: t0.Add(-5 * time.Hour)}, false},
		{Result{State: Answered}, false},
	} {
		if got := tc.r.Idle(t0, 2*time.Hour); got != tc.want {
			t.Errorf("%+v.Idle = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// The second look catches a server that answers by then.
func TestSecondLook(t *testing.T) {
	var calls atomic.Int32
	fj := fakejupyter.New("/", "", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// Drop the first request: the client sees no answer.
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		fj.ServeHTTP(w, r)
	}))
	defer srv.Close()
	got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: t0.Add(-time.Hour)}})["c"]
	// Dropped, then kernels and terminals (404 from the fake).
	if got.State != Answered || calls.Load() != 3 {
		t.Errorf("got %+v after %d calls", got, calls.Load())
	}
}

// The probe reads per-kernel activity only; its own requests move the
// server's global last_activity (as in Jupyter), which it must not use.
func TestProbeIsNotActivity(t *testing.T) {
	srv, _ := fakeServer(t, "", []fakejupyter.Kernel{{ID: "k", LastActivity: t0.Add(-3 * time.Hour), ExecutionState: "idle"}})
	p := testProber()
	tg := []Target{{ID: "c", URL: srv.URL + "/30000/", StartedAt: t0.Add(-5 * time.Hour)}}
	for range 3 {
		if got := p.Probe(t.Context(), tg)["c"]; !got.LastActivity.Equal(t0.Add(-3*time.Hour)) || !got.Idle(t0, 2*time.Hour) {
			t.Fatalf("probe moved activity: %+v", got)
		}
	}
}

func TestProbeConcurrencyBound(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	fj := fakejupyter.New("/", "", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		fj.ServeHTTP(w, r)
	}))
	defer srv.Close()
	p := testProber()
	p.Concurrency = 3
	var tg []Target
	for i := range 10 {
		tg = append(tg, Target{ID: string(rune('a' + i)), URL: srv.URL + "/", StartedAt: t0.Add(-time.Hour)})
	}
	done := make(chan map[string]Result)
	go func() { done <- p.Probe(t.Context(), tg) }()
	// Wait until the bound is reached, then let everything through.
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	res := <-done
	if len(res) != 10 || peak.Load() != 3 {
		t.Errorf("%d results, peak %d in flight (want 10, 3)", len(res), peak.Load())
	}
}

// summary is r without what the table tests do not state: the error text,
// the per-kernel list and the container's start.
func summary(r Result) Result {
	r.Err, r.KernelStates, r.StartedAt = "", nil, time.Time{}
	return r
}
