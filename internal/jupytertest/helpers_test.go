package jupytertest

import (
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

func requireDocker(t *testing.T) *client.Client { return testenv.RequireDockerFor(t, RequireEnv) }

// waitPast waits until the wall clock is clearly after ts, so that any
// timestamp the server takes from now on differs from ts. The server's
// clock is the host's (containers share the kernel clock), and its
// timestamps have microsecond resolution; 2ms of margin is plenty.
func waitPast(t *testing.T, ts time.Time) {
	t.Helper()
	deadline := ts.Add(2 * time.Millisecond)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-t.Context().Done():
			t.Fatal("context ended while waiting for the clock")
		case <-tick.C:
		}
	}
}

// listedBusy waits until the server lists kernel id busy. Jupyter's REST
// view of a kernel comes from the kernel's status messages, and under load
// the server can miss one: then the fact cannot be observed in this run,
// and the test skips (saying so) rather than flake.
func listedBusy(t *testing.T, s *Server, id string) bool {
	t.Helper()
	if _, err := s.WaitKernelState(t.Context(), id, "busy", time.Minute); err != nil {
		t.Skipf("the server did not list the busy kernel busy (%v): it missed the kernel's status message, a known Jupyter lag; not observable in this run", err)
		return false
	}
	return true
}

func mustStatus(t *testing.T, s *Server) Status {
	t.Helper()
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustKernel(t *testing.T, s *Server, id string) Kernel {
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
	return Kernel{}
}
