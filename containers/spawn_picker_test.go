package containers

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/manifest"
)

// pickerEngine is a fakeEngine that picks host ports itself, as Swarm does.
type pickerEngine struct{ fakeEngine }

func (*pickerEngine) Capabilities() Capabilities { return Capabilities{PicksHostPort: true} }

var _ capable = (*pickerEngine)(nil)

// servePrefix serves a fake Jupyter under prefix on a free loopback port
// and returns the port.
func servePrefix(t *testing.T, prefix string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fakejupyter.New(prefix, "", nil)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// deadPort is a loopback port nothing listens on.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSpawnOnPortPickingEngine: on an engine that picks host port and node
// (Swarm), Spawn creates the service without a port and with the stable
// prefix, reads port and node back, and hands out a URL on the node; a
// stopped service is started and read back; a server whose task restarts
// on another port while starting is followed there.
func TestSpawnOnPortPickingEngine(t *testing.T) {
	const prefix = "/u/flot/alice/"
	co := manifest.Course{Name: "flot", Container: manifest.Container{
		Port: 8888, Command: []string{"/fakejupyter", "--base-url={prefix}"},
	}}
	running := func(port int) Raw {
		return Raw{ID: "svc1", Name: "flot-x-alice", ImageID: "reg/flot@sha256:1", EngineState: "running", Host: "127.0.0.1",
			Labels: map[string]string{LabelManagedBy: ManagedBy, LabelCourse: "flot", LabelStudent: "alice", LabelBasePath: prefix},
			Ports:  map[int]int{8888: port}}
	}
	stopped := running(0)
	stopped.EngineState, stopped.Ports, stopped.Host = "exited", nil, ""

	tests := []struct {
		name string
		// observed is what successive Inspects return; the last repeats.
		observed  func(t *testing.T) (before []Raw, after []Raw, want int)
		wantState SpawnState
	}{
		{"created", func(t *testing.T) ([]Raw, []Raw, int) {
			p := servePrefix(t, prefix)
			return nil, []Raw{running(p)}, p
		}, Created},
		{"stopped service started", func(t *testing.T) ([]Raw, []Raw, int) {
			p := servePrefix(t, prefix)
			return []Raw{stopped}, []Raw{running(p)}, p
		}, Started},
		{"restarted on another port while starting", func(t *testing.T) ([]Raw, []Raw, int) {
			p := servePrefix(t, prefix)
			return nil, []Raw{running(deadPort(t)), running(p)}, p
		}, Created},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, after, want := tt.observed(t)
			var mu sync.Mutex
			started := false
			var created Spec
			inspects := 0
			eng := &pickerEngine{fakeEngine{
				ImagesFn: func(context.Context, []string) (map[string]Image, error) {
					return map[string]Image{"flot:latest": {ID: "reg/flot@sha256:1", Labels: map[string]string{images.LabelImage: "flot", images.LabelBuildKey: "0123456789abcdef"}}}, nil
				},
				InspectFn: func(context.Context, string) (Raw, error) {
					mu.Lock()
					defer mu.Unlock()
					if !started {
						if len(before) == 0 {
							return Raw{}, ErrNotFound
						}
						return before[0], nil
					}
					r := after[min(inspects, len(after)-1)]
					inspects++
					return r, nil
				},
				CreateFn: func(_ context.Context, s Spec) (string, error) {
					created = s
					return "svc1", nil
				},
				StartFn: func(context.Context, string) error {
					mu.Lock()
					defer mu.Unlock()
					started = true
					return nil
				},
			}}
			m := New(eng, nil, nil)
			m.Tokens = fixedTokens{"flot/alice": "t"} // a Swarm server is never made without one
			m.HostIP = "192.0.2.99"                   // not where the servers are: the node address must win
			m.ReadyTimeout = 20 * time.Second
			sp, err := m.Spawn(t.Context(), co, "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"})
			if err != nil {
				t.Fatal(err)
			}
			wantURL := "http://127.0.0.1:" + itoa(want) + prefix
			if sp.State != tt.wantState || sp.Port != want || sp.Host != "127.0.0.1" || sp.URL != wantURL {
				t.Errorf("spawned %+v; want %s on 127.0.0.1:%d, %s", sp, tt.wantState, want, wantURL)
			}
			if tt.wantState == Created {
				if _, ok := created.Labels[LabelPort]; ok || created.Labels[LabelBasePath] != prefix || created.HostPort != 0 {
					t.Errorf("created with labels %v, host port %d; want the prefix label and no port", created.Labels, created.HostPort)
				}
				if !slices.Equal(created.Cmd, []string{"/fakejupyter", "--base-url=" + prefix}) {
					t.Errorf("command %q", created.Cmd)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A Swarm server is published on every address of its node: without a
// token it is never made.
func TestSwarmSpawnNeedsToken(t *testing.T) {
	created := false
	eng := &pickerEngine{fakeEngine{
		ImagesFn: func(context.Context, []string) (map[string]Image, error) {
			return map[string]Image{"flot:latest": {ID: "reg/flot@sha256:1", Labels: map[string]string{
				images.LabelImage: "flot", images.LabelBuildKey: "0123456789abcdef"}}}, nil
		},
		InspectFn: func(context.Context, string) (Raw, error) { return Raw{}, ErrNotFound },
		CreateFn:  func(context.Context, Spec) (string, error) { created = true; return "svc1", nil },
	}}
	m := New(eng, nil, nil) // no token source, and the course sets none
	co := manifest.Course{Name: "flot", Container: manifest.Container{Port: 8888, Command: []string{"x", "{prefix}"}}}
	_, err := m.Spawn(t.Context(), co, "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"})
	if err == nil || !strings.Contains(err.Error(), "no Jupyter token") || created {
		t.Fatalf("spawn without a token: %v (service created: %v)", err, created)
	}
}
