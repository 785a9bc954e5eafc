package activity_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
)

// These tests run the probe against real Jupyter servers (the probe's own
// requests must not count as activity, checked against a real server), of
// both generations: jupyter_server 1.23 and the classic Notebook 6.4, and
// jupyter_server 2.15.

func requireDocker(t *testing.T) *client.Client {
	return testenv.RequireDockerFor(t, jupytertest.RequireEnv)
}

func testName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "nbhtest-prb-" + hex.EncodeToString(b)
}

// realServer starts a real Jupyter server of a flavor under nbhosting's
// /{port}/ base URL and returns it with the probe target for it, StartedAt
// taken from the engine as the container pass does.
func realServer(t *testing.T, cli *client.Client, flavor jupytertest.Flavor) (*jupytertest.Server, activity.Target) {
	t.Helper()
	s := jupytertest.Start(t, cli, jupytertest.Options{Flavor: flavor, Name: testName(), BaseURL: "/{port}/"})
	info, err := cli.ContainerInspect(t.Context(), s.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	started, err := time.Parse(time.RFC3339Nano, info.State.StartedAt)
	if err != nil {
		t.Fatal(err)
	}
	return s, activity.Target{ID: s.ContainerID, URL: s.URL, Token: s.Token, StartedAt: started}
}

func realProber() *activity.Prober {
	p := activity.New()
	p.Timeout = 5 * time.Second
	p.SecondLook = 200 * time.Millisecond
	return p
}

func probe(t *testing.T, p *activity.Prober, tg activity.Target) activity.Result {
	t.Helper()
	return p.Probe(t.Context(), []activity.Target{tg})[tg.ID]
}

func status(t *testing.T, s *jupytertest.Server) jupytertest.Status {
	t.Helper()
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func kernel(t *testing.T, s *jupytertest.Server, id string) jupytertest.Kernel {
	t.Helper()
	ks, err := s.KernelsUntracked(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("kernel %s not listed in %+v", id, ks)
	return jupytertest.Kernel{}
}

// probesLeaveNoTrace probes n times and checks that the probes did not
// move the server's global last_activity (/api/status, which Jupyter's own
// culler reads) and, when the kernels are settled (nothing runs in them),
// that no kernel's last_activity or execution_state moved either.
//
// A running kernel may move on its own meanwhile (a message it publishes),
// and the global last_activity with it: that is the newest of the server's
// start, its last tracked request and every kernel's last_activity. So the
// global one may move, but only to a kernel's; a tracked probe would have
// moved it to the probe's own time.
func probesLeaveNoTrace(t *testing.T, s *jupytertest.Server, p *activity.Prober, tg activity.Target, n int, settled bool) activity.Result {
	t.Helper()
	before := status(t, s)
	kBefore, err := s.KernelsUntracked(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var r activity.Result
	for range n {
		r = probe(t, p, tg)
		if r.State != activity.Answered {
			t.Fatalf("probe: %+v", r)
		}
	}
	after := status(t, s)
	kAfter, err := s.KernelsUntracked(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	allowed := before.LastActivity
	for _, k := range kAfter {
		if k.LastActivity.After(allowed) {
			allowed = k.LastActivity
		}
	}
	if !after.LastActivity.Equal(allowed) {
		t.Errorf("%d probes moved the server's last_activity from %s to %s (kernels: %+v)", n,
			before.LastActivity.Format(time.RFC3339Nano), after.LastActivity.Format(time.RFC3339Nano), kAfter)
	}
	if settled && fmt.Sprint(kAfter) != fmt.Sprint(kBefore) {
		t.Errorf("%d probes moved kernels from %+v to %+v", n, kBefore, kAfter)
	}
	return r
}

func TestRealJupyter(t *testing.T) {
	t.Parallel()
	for _, flavor := range jupytertest.Generations {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s, tg := realServer(t, cli, flavor)
			p := realProber()

			// A fresh server without kernels is idle since its container
			// started, and probing it does not make it less so.
			r := probesLeaveNoTrace(t, s, p, tg, 5, true)
			if r.Kernels != 0 || r.Busy || !r.LastActivity.Equal(tg.StartedAt) {
				t.Errorf("fresh server: %+v, want no kernel, last activity = container start %s", r, tg.StartedAt)
			}
			if !r.Idle(tg.StartedAt.Add(time.Hour), time.Hour) || r.Idle(tg.StartedAt.Add(time.Hour), 2*time.Hour) {
				t.Errorf("fresh server, an hour later: %+v; want idle for 1h, not for 2h", r)
			}
			if st := status(t, s); !st.LastActivity.Equal(st.Started) {
				t.Errorf("after probes, status %+v: want last_activity == started", st)
			}

			// Control: the naive request moves the global last_activity, so
			// the checks above can see a probe that does.
			before := status(t, s)
			if _, err := s.Kernels(t.Context()); err != nil {
				t.Fatal(err)
			}
			if after := status(t, s); after.LastActivity.Equal(before.LastActivity) {
				t.Fatalf("GET api/kernels without no_track_activity did not move last_activity (%s): the no-trace checks prove nothing", after.LastActivity)
			}

			// A new kernel: activity at its creation, not busy while it is
			// listed starting.
			k, err := s.CreateKernel(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// Its last_activity moves once more when the kernel comes up and
			// says so, which may fall between the probe and the listing.
			r = probe(t, p, tg)
			listed := kernel(t, s, k.ID)
			if r.State != activity.Answered || r.Kernels != 1 || r.LastActivity.Before(k.LastActivity) || r.LastActivity.After(listed.LastActivity) {
				t.Errorf("new kernel (created %s, then listed %+v): probe %+v", k.LastActivity, listed, r)
			}
			if listed.ExecutionState == "starting" && (r.Busy || r.Starting != 1) {
				t.Errorf("kernel listed starting: probe %+v, want not busy, one starting", r)
			}
			if r.Idle(time.Now(), time.Minute) {
				t.Errorf("a kernel just created: probe %+v says idle", r)
			}

			// A settled kernel: its last_activity is the server's, and
			// probing moves neither.
			testenv.Eventually(t, 30*time.Second, "kernel listed idle after a cell", func() (bool, string) {
				if _, err := s.Execute(t.Context(), k.ID, "x = 1"); err != nil {
					return false, err.Error()
				}
				// The listed state may lag the kernel's (see jupytertest).
				for range 20 {
					if kernel(t, s, k.ID).ExecutionState == "idle" {
						return true, ""
					}
					time.Sleep(50 * time.Millisecond)
				}
				return false, fmt.Sprintf("%+v", kernel(t, s, k.ID))
			})
			listed = kernel(t, s, k.ID)
			r = probesLeaveNoTrace(t, s, p, tg, 5, true)
			if r.Busy || r.Starting != 0 || !r.LastActivity.Equal(listed.LastActivity) {
				t.Errorf("idle kernel %+v: probe %+v", listed, r)
			}
			if !r.Idle(listed.LastActivity.Add(time.Hour), time.Hour) {
				t.Errorf("idle kernel, an hour later: probe %+v not idle", r)
			}

			// A kernel running a long cell is busy: never idle, however old
			// its last message.
			if err := s.StartExecution(t.Context(), k.ID, "import time; time.sleep(600)"); err != nil {
				t.Fatal(err)
			}
			testenv.Eventually(t, 10*time.Second, "probe sees the kernel busy", func() (bool, string) {
				r = probe(t, p, tg)
				return r.Busy, fmt.Sprintf("%+v", r)
			})
			if r.Idle(time.Now().Add(24*time.Hour), time.Minute) {
				t.Errorf("busy kernel: probe %+v says idle", r)
			}
			probesLeaveNoTrace(t, s, p, tg, 3, false)

			// A wrong token: the server answers 403; nothing can be
			// concluded, and the refused request is no activity either.
			bad := tg
			bad.Token = "wrong"
			before = status(t, s)
			if r := probe(t, p, bad); r.State != activity.Unknown || r.Err == "" || r.Idle(time.Now().Add(24*time.Hour), time.Minute) {
				t.Errorf("wrong token: %+v, want unknown, never idle", r)
			}
			none := tg
			none.Token = ""
			if r := probe(t, p, none); r.State != activity.Unknown || r.Idle(time.Now().Add(24*time.Hour), time.Minute) {
				t.Errorf("no token: %+v, want unknown, never idle", r)
			}
			// The running kernel may publish meanwhile (a message it sends
			// late after its busy status): the global last_activity may
			// move to a kernel's, never to a refused request's time.
			after := status(t, s)
			allowed := before.LastActivity
			if ks, err := s.KernelsUntracked(t.Context()); err == nil {
				for _, k := range ks {
					allowed = maxTime(allowed, k.LastActivity)
				}
			}
			if !after.LastActivity.Equal(before.LastActivity) && !after.LastActivity.Equal(allowed) {
				t.Errorf("refused probes moved last_activity from %s to %s (newest kernel activity %s)", before.LastActivity, after.LastActivity, allowed)
			}
		})
	}
}

// A server that stops answering (its container stopped): within the grace
// period after its start it is only starting; later it is unreachable after
// a second look, idle since its container started.
func TestRealJupyterUnreachable(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	s, tg := realServer(t, cli, jupytertest.FlavorServer)
	p := realProber()
	if r := probe(t, p, tg); r.State != activity.Answered {
		t.Fatalf("running server: %+v", r)
	}
	timeout := 5
	if err := cli.ContainerStop(t.Context(), s.ContainerID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}

	// Just started (as far as the probe knows): not idle, no second look.
	recent := tg
	recent.StartedAt = time.Now().Add(-10 * time.Second)
	if r := probe(t, p, recent); r.State != activity.Starting || r.Err == "" || r.Idle(time.Now().Add(time.Hour), time.Minute) {
		t.Errorf("stopped, started 10s ago: %+v, want starting, not idle", r)
	}

	// Long up: unreachable after a second look, idle since its start.
	old := tg
	old.StartedAt = time.Now().Add(-3 * time.Hour)
	begin := time.Now()
	r := probe(t, p, old)
	took := time.Since(begin)
	if r.State != activity.Unreachable || !r.LastActivity.Equal(old.StartedAt) || !r.Idle(time.Now(), 2*time.Hour) {
		t.Errorf("stopped, up 3h: %+v, want unreachable, idle since start", r)
	}
	if took < p.SecondLook {
		t.Errorf("unreachable after %v, less than the second look's delay %v", took, p.SecondLook)
	}
	t.Logf("unreachable verdict after %v (second look after %v)", took, p.SecondLook)
}

// A student working in a terminal only (no kernel) is seen: the terminal's
// last_activity counts, and probing does not move it.
func TestRealJupyterTerminal(t *testing.T) {
	t.Parallel()
	for _, flavor := range jupytertest.Generations {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s, tg := realServer(t, cli, flavor)
			p := realProber()
			var term struct {
				Name         string    `json:"name"`
				LastActivity time.Time `json:"last_activity"`
			}
			if err := s.Do(t.Context(), "POST", "api/terminals", nil, &term); err != nil {
				t.Fatal(err)
			}
			// jupyter_server 2.x moves a terminal's last_activity with its
			// shell's first output (the prompt), after creation: wait until
			// it rests, so that a move seen later is the probe's. On a loaded
			// machine the prompt came more than 1 s after creation: rest
			// means 10 s without a move.
			const rest = 10 * time.Second
			var settled time.Time
			testenv.Eventually(t, 90*time.Second, "the terminal's last_activity at rest", func() (bool, string) {
				var ts []struct {
					LastActivity time.Time `json:"last_activity"`
				}
				if err := s.Do(t.Context(), "GET", activity.TerminalsPath, nil, &ts); err != nil || len(ts) != 1 {
					return false, fmt.Sprint(ts, err)
				}
				if ts[0].LastActivity.Equal(settled) && time.Since(settled) > rest {
					return true, ""
				}
				settled = ts[0].LastActivity
				return false, settled.String()
			})
			term.LastActivity = settled
			r := probesLeaveNoTrace(t, s, p, tg, 3, true)
			if r.Kernels != 0 || r.Terminals != 1 || !r.LastActivity.Equal(term.LastActivity) || !r.LastActivity.After(tg.StartedAt) {
				t.Errorf("terminal %+v: probe %+v, want its last activity", term, r)
			}
			var ts []struct {
				LastActivity time.Time `json:"last_activity"`
			}
			if err := s.Do(t.Context(), "GET", activity.TerminalsPath, nil, &ts); err != nil {
				t.Fatal(err)
			}
			if len(ts) != 1 || !ts[0].LastActivity.Equal(term.LastActivity) {
				t.Errorf("probes moved the terminal: %+v, created %+v", ts, term)
			}
		})
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
