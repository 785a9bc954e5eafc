package site_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/site"
)

// serverEngine is a containers.Engine whose containers are fake Jupyter
// servers on their host port, and whose image a:latest was built here.
type serverEngine struct {
	t     *testing.T
	mu    sync.Mutex
	specs map[string]containers.Spec // by name
}

var _ containers.Engine = (*serverEngine)(nil)

func (e *serverEngine) List(context.Context) ([]containers.Raw, error) { return nil, nil }

// Images says the site's a:latest (whatever its repository) is built.
func (e *serverEngine) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	out := map[string]containers.Image{}
	for _, r := range refs {
		out[r] = containers.Image{ID: "sha256:a1", Labels: map[string]string{images.LabelImage: "a", images.LabelBuildKey: "0123456789ab"}}
	}
	return out, nil
}

func (e *serverEngine) Inspect(_ context.Context, name string) (containers.Raw, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.specs[name]
	if !ok {
		return containers.Raw{}, containers.ErrNotFound
	}
	return containers.Raw{ID: name, Name: name, ImageID: s.Image, EngineState: "running", Labels: s.Labels,
		Ports: map[int]int{s.Port: s.HostPort}}, nil
}

func (e *serverEngine) Create(_ context.Context, s containers.Spec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.specs[s.Name] = s
	return s.Name, nil
}

func (e *serverEngine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	s := e.specs[id]
	e.mu.Unlock()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.HostPort)))
	if err != nil {
		return containers.ErrPortInUse
	}
	srv := &http.Server{Handler: fakejupyter.New(naming.BasePath(s.HostPort), "", nil)}
	go srv.Serve(l)
	e.t.Cleanup(func() { srv.Close() })
	return nil
}

func (e *serverEngine) Stop(context.Context, string, time.Duration) error { return nil }
func (e *serverEngine) Remove(context.Context, string) error              { return nil }

// Students with no host account spawn, each with a uid of their own from
// students.uids (100000-199999 when it says none), the same at every spawn
// and after a restart.
func TestSpawnAllocatesUIDs(t *testing.T) {
	const n = 6
	for i := range n {
		if _, err := user.Lookup(fmt.Sprintf("nbhtest-s%d", i)); err == nil {
			t.Skipf("host account nbhtest-s%d exists", i)
		}
	}
	for name, students := range map[string]string{"students.uids": "students: {uids: 100000-199999}\n", "the default range": ""} {
		t.Run(name, func(t *testing.T) { spawnAllocatesUIDs(t, n, students) })
	}
}

func spawnAllocatesUIDs(t *testing.T, n int, students string) {
	dir := t.TempDir()
	yaml := "version: 1\n" + students + "courses:\n  a: {repo: " + filepath.Join(dir, "none") + "}\n"
	config := commitConfig(t, filepath.Join(dir, "config"), map[string]string{"courses.yaml": yaml})
	root := filepath.Join(dir, "root")
	eng := &serverEngine{t: t, specs: map[string]containers.Spec{}}
	open := func() *site.Site {
		st, err := site.New(site.Options{Config: config, Root: root, ContainerEngine: eng, ImageEngine: noImages{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		// The config first: concurrent first reads of a fresh site
		// find its fetch running.
		if _, err := st.Config(t.Context()); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := open()
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sp, err := st.Spawn(t.Context(), "a", fmt.Sprintf("nbhtest-s%d", i), "")
			if err != nil {
				t.Errorf("spawn nbhtest-s%d: %v", i, err)
			}
			got[i] = sp.UID
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, uid := range got {
		if u, _ := strconv.Atoi(uid); u < 100000 || u > 199999 || seen[uid] {
			t.Errorf("nbhtest-s%d: uid %q, want a uid of its own in 100000-199999", i, uid)
		}
		seen[uid] = true
		if l := eng.specs[naming.Container("a", fmt.Sprintf("nbhtest-s%d", i))].Labels[containers.LabelUID]; l != uid {
			t.Errorf("nbhtest-s%d: container labelled uid %q, spawn says %q", i, l, uid)
		}
	}
	// A restart, and the containers gone: the same uids again.
	eng.mu.Lock()
	clear(eng.specs)
	eng.mu.Unlock()
	again := open()
	for i := range n {
		sp, err := again.Spawn(t.Context(), "a", fmt.Sprintf("nbhtest-s%d", i), "")
		if err != nil || sp.UID != got[i] {
			t.Errorf("nbhtest-s%d after a restart: uid %q, %v; want %q", i, sp.UID, err, got[i])
		}
	}
}
