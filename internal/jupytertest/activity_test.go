package jupytertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// These tests establish, against the real servers, what moves which
// last_activity timestamp, so that nbh-sync's activity probe can read a
// server without making it look active.

// settledKernel creates a kernel, runs a trivial cell in it so that the
// server sees it go idle, and waits until the server lists it idle: from
// then on the kernel sends nothing unless asked. The cell is retried because
// the server's own IOPub subscription to a kernel that has just started can
// miss the kernel's first messages (ZeroMQ's "slow joiner"), leaving the
// listed state at "starting" or "busy" although the kernel is idle: a fact
// the activity probe must live with too.
func settledKernel(t *testing.T, s *Server) Kernel {
	t.Helper()
	k, err := s.CreateKernel(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, "kernel listed idle after a cell", func() (bool, string) {
		if out, err := s.Execute(t.Context(), k.ID, "print(6*7)"); err != nil || out != "42\n" {
			return false, fmt.Sprintf("execute: out %q, err %v", out, err)
		}
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if mustKernel(t, s, k.ID).ExecutionState == "idle" {
				return true, ""
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false, fmt.Sprintf("listed %+v", mustKernel(t, s, k.ID))
	})
	return mustKernel(t, s, k.ID)
}

// TestGlobalActivityByEndpoint checks, endpoint by endpoint, whether an
// authenticated GET moves the server's global last_activity (the one
// /api/status reports), and that none moves a kernel's last_activity.
func TestGlobalActivityByEndpoint(t *testing.T) {
	t.Parallel()
	for _, flavor := range Flavors {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s := Start(t, cli, Options{Flavor: flavor, BaseURL: "/8123/"})
			k := settledKernel(t, s)

			tests := []struct {
				path      string
				noToken   bool // send no credentials: the server answers 403
				wantMoved bool
			}{
				{path: "api/status", wantMoved: false},
				{path: "api/kernels", wantMoved: true},
				{path: "api/kernels?no_track_activity=1", wantMoved: false},
				{path: "api/kernels/" + k.ID, wantMoved: true},
				{path: "api/kernels/" + k.ID + "?no_track_activity=1", wantMoved: false},
				{path: "api/sessions", wantMoved: true},
				{path: "api/sessions?no_track_activity=1", wantMoved: false},
				{path: "api/kernelspecs", wantMoved: true},
				{path: "api/contents", wantMoved: true},
				{path: "api/terminals", wantMoved: true},
				{path: "api", wantMoved: true},
				{path: "api/kernels", noToken: true, wantMoved: false},
			}
			for _, tt := range tests {
				name := tt.path
				if tt.noToken {
					name += " without token"
				}
				t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
					before := mustStatus(t, s)
					kBefore := mustKernel(t, s, k.ID)
					waitPast(t, before.LastActivity)
					reqStart := time.Now().Truncate(time.Microsecond)
					if tt.noToken {
						resp, err := http.Get(s.URL + tt.path)
						if err != nil {
							t.Fatal(err)
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusForbidden {
							t.Fatalf("GET %s without token: HTTP %d, want 403", tt.path, resp.StatusCode)
						}
					} else if _, err := s.Raw(t.Context(), http.MethodGet, tt.path, nil); err != nil {
						t.Fatal(err)
					}
					after := mustStatus(t, s)
					moved := !after.LastActivity.Equal(before.LastActivity)
					if moved != tt.wantMoved {
						t.Errorf("GET %s: global last_activity %s -> %s (moved %v), want moved %v",
							tt.path, before.LastActivity.Format(time.RFC3339Nano), after.LastActivity.Format(time.RFC3339Nano), moved, tt.wantMoved)
					}
					if moved && after.LastActivity.Before(reqStart) {
						t.Errorf("GET %s: global last_activity moved to %s, before the request (%s)", tt.path, after.LastActivity, reqStart)
					}
					if kAfter := mustKernel(t, s, k.ID); !kAfter.LastActivity.Equal(kBefore.LastActivity) || kAfter.ExecutionState != kBefore.ExecutionState {
						t.Errorf("GET %s: kernel moved from %+v to %+v", tt.path, kBefore, kAfter)
					}
					t.Logf("%s GET %-50s moves global last_activity: %v", flavor, name, moved)
				})
			}
		})
	}
}

// TestStatusIsMaxOfActivities checks how /api/status combines timestamps:
// a fresh server reports last_activity == started, and running code in a
// kernel moves both that kernel's last_activity and the global one, which is
// never older than any kernel's.
func TestStatusIsMaxOfActivities(t *testing.T) {
	t.Parallel()
	for _, flavor := range Flavors {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s := Start(t, cli, Options{Flavor: flavor})

			st := mustStatus(t, s)
			if !st.LastActivity.Equal(st.Started) || st.Kernels != 0 {
				t.Fatalf("fresh server status %+v: want last_activity == started, no kernel", st)
			}

			k, err := s.CreateKernel(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if k.ExecutionState != "starting" {
				t.Errorf("new kernel state %q, want starting", k.ExecutionState)
			}
			st = mustStatus(t, s)
			if st.Kernels != 1 || st.LastActivity.Before(k.LastActivity) {
				t.Errorf("status %+v after creating kernel %+v: want 1 kernel, last_activity >= kernel's", st, k)
			}

			k = settledKernel(t, s)
			before := mustStatus(t, s)
			waitPast(t, before.LastActivity)
			start := time.Now().Truncate(time.Microsecond)
			if _, err := s.Execute(t.Context(), k.ID, "x = 1"); err != nil {
				t.Fatal(err)
			}
			kAfter := mustKernel(t, s, k.ID)
			after := mustStatus(t, s)
			if !kAfter.LastActivity.After(start) {
				t.Errorf("kernel last_activity %s not moved by execution started at %s", kAfter.LastActivity, start)
			}
			if after.LastActivity.Before(kAfter.LastActivity) {
				t.Errorf("global last_activity %s older than kernel's %s", after.LastActivity, kAfter.LastActivity)
			}
			if kAfter.ExecutionState != "idle" {
				t.Errorf("kernel state after execution %q, want idle", kAfter.ExecutionState)
			}
		})
	}
}

// TestKernelActivityFromStudentActions checks which REST and websocket
// actions of a student move a kernel's last_activity and execution_state.
func TestKernelActivityFromStudentActions(t *testing.T) {
	t.Parallel()
	for _, flavor := range Flavors {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s := Start(t, cli, Options{Flavor: flavor})
			k := settledKernel(t, s)

			busy := false
			t.Run("busy kernel is listed busy", func(t *testing.T) {
				if err := s.StartExecution(t.Context(), k.ID, "import time; time.sleep(120)"); err != nil {
					t.Fatal(err)
				}
				busy = listedBusy(t, s, k.ID)
			})
			t.Run("interrupt ends the busy cell", func(t *testing.T) {
				if !busy {
					t.Skip("the kernel was never listed busy")
				}
				before := mustKernel(t, s, k.ID)
				waitPast(t, before.LastActivity)
				if err := s.InterruptKernel(t.Context(), k.ID); err != nil {
					t.Fatal(err)
				}
				testenv.WaitFor(t, 60*time.Second, "kernel idle after interrupt", func() bool {
					after := mustKernel(t, s, k.ID)
					return after.ExecutionState == "idle" && after.LastActivity.After(before.LastActivity)
				})
			})
			t.Run("restart moves the kernel", func(t *testing.T) {
				before := mustKernel(t, s, k.ID)
				waitPast(t, before.LastActivity)
				if _, err := s.RestartKernel(t.Context(), k.ID); err != nil {
					t.Fatal(err)
				}
				testenv.WaitFor(t, 60*time.Second, "kernel activity after restart", func() bool {
					return mustKernel(t, s, k.ID).LastActivity.After(before.LastActivity)
				})
			})
			t.Run("delete removes the kernel", func(t *testing.T) {
				if err := s.DeleteKernel(t.Context(), k.ID); err != nil {
					t.Fatal(err)
				}
				ks, err := s.KernelsUntracked(t.Context())
				if err != nil || len(ks) != 0 {
					t.Fatalf("kernels after delete: %+v, %v", ks, err)
				}
			})
		})
	}
}

// TestConnections: every server application counts a kernel's open
// websockets in its "connections" (GET /api/kernels), /api/status reports
// their sum, and a closed websocket stops being counted. Reading either
// does not open one.
func TestConnections(t *testing.T) {
	t.Parallel()
	for _, flavor := range Generations {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := requireDocker(t)
			s := Start(t, cli, Options{Flavor: flavor})
			ctx := t.Context()
			k, err := s.CreateKernel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			counts := func(want int) {
				t.Helper()
				if _, err := s.WaitConnections(ctx, k.ID, want, 30*time.Second); err != nil {
					t.Fatal(err)
				}
				st, err := s.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.Connections != want {
					t.Errorf("/api/status connections %d, kernel's %d", st.Connections, want)
				}
			}
			counts(0)
			tab1, err := s.Connect(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer tab1.Close()
			counts(1)
			tab2, err := s.Connect(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			counts(2)
			if err := tab2.Close(); err != nil {
				t.Fatal(err)
			}
			counts(1)
		})
	}
}
