package containers_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
)

// A third kind of engine is one registration away: nothing else in the
// package knows it.
func init() {
	containers.RegisterKind("memory", containers.Kind{Capabilities: memoryCapabilities, Open: openMemory})
}

// memoryCapabilities: like Swarm, the engine picks the host port at every
// start, and reports where the server is.
var memoryCapabilities = containers.Capabilities{PicksHostPort: true}

// memoryEngine runs each container's server itself, in this process: a
// fake Jupyter under the container's base path that wants its token, on
// a loopback port it picks at every start. Every image asked for is a
// build of this site.
type memoryEngine struct {
	mu   sync.Mutex
	ctrs map[string]*memoryContainer // by name
	n    int                         // containers made, for IDs
}

type memoryContainer struct {
	raw   containers.Raw
	spec  containers.Spec
	token string
	srv   *http.Server // while it runs
}

func openMemory(manifest.Engine) (containers.Engine, error) {
	return &memoryEngine{ctrs: map[string]*memoryContainer{}}, nil
}

func (e *memoryEngine) Capabilities() containers.Capabilities { return memoryCapabilities }

// find returns the container named or identified by ref; mu held.
func (e *memoryEngine) find(ref string) (*memoryContainer, error) {
	for _, c := range e.ctrs {
		if c.raw.Name == ref || c.raw.ID == ref {
			return c, nil
		}
	}
	return nil, fmt.Errorf("container %s: %w", ref, containers.ErrNotFound)
}

func (e *memoryEngine) List(context.Context) ([]containers.Raw, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []containers.Raw
	for _, c := range e.ctrs {
		out = append(out, c.raw)
	}
	return out, nil
}

func (e *memoryEngine) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	out := map[string]containers.Image{}
	for _, r := range refs {
		name := strings.TrimSuffix(r, ":latest")
		out[r] = containers.Image{ID: "mem:" + name, Labels: map[string]string{imageref.LabelImage: name, imageref.LabelBuildKey: "k"}}
	}
	return out, nil
}

func (e *memoryEngine) Inspect(_ context.Context, name string) (containers.Raw, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(name)
	if err != nil {
		return containers.Raw{}, err
	}
	return c.raw, nil
}

func (e *memoryEngine) Create(_ context.Context, spec containers.Spec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ctrs[spec.Name]; ok {
		return "", containers.ErrConflict
	}
	e.n++
	c := &memoryContainer{spec: spec, raw: containers.Raw{ID: fmt.Sprintf("mem%d", e.n), Name: spec.Name, ImageID: spec.Image,
		EngineState: "created", Created: time.Now(), Labels: spec.Labels}}
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, containers.TokenEnv+"="); ok {
			c.token = v
		}
	}
	e.ctrs[spec.Name] = c
	return c.raw.ID, nil
}

func (e *memoryEngine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil || c.srv != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c.srv = &http.Server{Handler: fakejupyter.New(c.spec.Labels[containers.LabelBasePath], c.token, nil)}
	go c.srv.Serve(l)
	c.raw.EngineState, c.raw.StartedAt, c.raw.Host = "running", time.Now(), "127.0.0.1"
	c.raw.Ports = map[int]int{c.spec.Port: l.Addr().(*net.TCPAddr).Port}
	return nil
}

func (e *memoryEngine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return nil // Stop succeeds on a missing container
	}
	e.stop(c)
	return nil
}

// stop closes c's server; mu held.
func (e *memoryEngine) stop(c *memoryContainer) {
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
	c.raw.EngineState, c.raw.Ports, c.raw.Host = "exited", nil, ""
}

func (e *memoryEngine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, err := e.find(id); err == nil {
		e.stop(c)
		delete(e.ctrs, c.raw.Name)
	}
	return nil
}

// TestThirdEngineKind drives a student's server through an engine kind
// registered by the test alone: Spawn creates it where the engine put it,
// Stop and List see it stopped, Spawn starts it again on the port the
// engine picks then, and Remove takes it away.
func TestThirdEngineKind(t *testing.T) {
	kind, err := containers.LookupKind("memory")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := kind.Open(manifest.Engine{Kind: "memory"})
	if err != nil {
		t.Fatal(err)
	}
	m := containers.New(eng, nil, nil)
	m.HostIP = "192.0.2.99" // not where the servers are: the engine's address must win
	m.ReadyTimeout = 20 * time.Second
	const prefix = "/u/flot/alice/"
	co := manifest.Course{Name: "flot", Container: manifest.Container{Port: 8888, Token: "secret", Command: []string{"jupyter", "--base-url={prefix}"}}}
	opts := containers.SpawnOptions{Root: t.TempDir(), UID: "1000"}
	t.Cleanup(func() {
		if err := m.Remove(context.WithoutCancel(t.Context()), naming.Container("flot", "alice")); err != nil {
			t.Error(err)
		}
	})

	list := func(want containers.State) containers.Container {
		t.Helper()
		cs, err := m.List(t.Context(), nil)
		if err != nil || len(cs) != 1 || cs[0].State != want || cs[0].Student != "alice" || cs[0].BasePath != prefix {
			t.Fatalf("list: %+v, %v; want alice's container %s under %s", cs, err, want, prefix)
		}
		return cs[0]
	}
	spawn := func(want containers.SpawnState) containers.Spawned {
		t.Helper()
		sp, err := m.Spawn(t.Context(), co, "alice", opts)
		if err != nil {
			t.Fatal(err)
		}
		if sp.State != want || sp.Host != "127.0.0.1" || sp.URL != fmt.Sprintf("http://127.0.0.1:%d%s", sp.Port, prefix) || sp.Token != "secret" {
			t.Fatalf("spawned %+v; want %s, on 127.0.0.1 under %s with the course's token", sp, want, prefix)
		}
		return sp
	}

	first := spawn(containers.Created)
	if c := list(containers.Running); c.Port != first.Port {
		t.Errorf("listed on port %d, spawned on %d", c.Port, first.Port)
	}
	if again := spawn(containers.Existing); again.Port != first.Port {
		t.Errorf("running server handed out on port %d, was %d", again.Port, first.Port)
	}
	if err := m.Stop(t.Context(), first.ID); err != nil {
		t.Fatal(err)
	}
	list(containers.Stopped)
	// Started, not made again: on an engine that picks the port, a
	// stopped container has none and is still on the current image.
	started := spawn(containers.Started)
	if started.ID != first.ID {
		t.Errorf("started container %s; want the stopped one, %s", started.ID, first.ID)
	}
	list(containers.Running)
	if err := m.Remove(t.Context(), started.ID); err != nil {
		t.Fatal(err)
	}
	if cs, err := m.List(t.Context(), nil); err != nil || len(cs) != 0 {
		t.Errorf("after Remove, list: %+v, %v", cs, err)
	}
}
