package site_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/site"
)

// stopGate is a container engine holding stale, stopped containers of one
// course. Each Stop waits until `want` stops are in flight at once (or
// until a deadline), so a pass that applies one action at a time shows up
// as a peak of 1 instead of hanging.
type stopGate struct {
	raws []containers.Raw
	want int

	mu       sync.Mutex
	cond     *sync.Cond
	inFlight int
	peak     int
	removed  map[string]bool
}

var _ containers.Engine = (*stopGate)(nil)

func (g *stopGate) List(context.Context) ([]containers.Raw, error) { return g.raws, nil }

// Images says every site-scoped name:latest is a build of this site (the builder's
// labels), newer than the containers' image.
func (g *stopGate) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	out := map[string]containers.Image{}
	for _, r := range refs {
		// SITE_NAMESPACE/name:latest, as a site asks for its images.
		_, name, _ := strings.Cut(strings.TrimSuffix(r, ":latest"), "/")
		out[r] = containers.Image{ID: "sha256:new", Labels: map[string]string{images.LabelImage: name, images.LabelBuildKey: "0123456789abcdef"}}
	}
	return out, nil
}

func (g *stopGate) Inspect(_ context.Context, name string) (containers.Raw, error) {
	for _, r := range g.raws {
		if r.Name == name {
			return r, nil
		}
	}
	return containers.Raw{}, containers.ErrNotFound
}

func (g *stopGate) Create(context.Context, containers.Spec) (string, error) {
	panic("a pass creates nothing")
}

func (g *stopGate) Start(context.Context, string) error { panic("a pass starts nothing") }

func (g *stopGate) Stop(ctx context.Context, _ string, _ time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight++
	g.peak = max(g.peak, g.inFlight)
	g.cond.Broadcast()
	deadline := time.AfterFunc(2*time.Second, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	for g.peak < g.want && time.Since(start) < 2*time.Second && ctx.Err() == nil {
		g.cond.Wait()
	}
	g.inFlight--
	return nil
}

func (g *stopGate) Remove(_ context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removed[id] = true
	return nil
}

// noImages is an image engine with no images: the pass's pruning of old
// builds finds nothing to do.
type noImages struct{ images.Engine }

func (noImages) ImageList(context.Context, ...string) ([]images.ImageInfo, error) { return nil, nil }

func (noImages) ContainerList(context.Context, ...string) ([]string, error) { return nil, nil }

// The site's pass is the one production runs: it must apply its
// retirements concurrently. It used to build its own Applier with no
// concurrency, so a roll-out over many idle containers stopped them one at
// a time.
func TestPassAppliesConcurrently(t *testing.T) {
	cfg := commitConfig(t, t.TempDir(), map[string]string{
		"courses.yaml": "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n",
		"intro/docker-image/nbhosting.Dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	})

	root := t.TempDir()
	g := &stopGate{want: 2, removed: map[string]bool{}}
	g.cond = sync.NewCond(&g.mu)
	for _, student := range []string{"ann", "ben", "cid", "dot"} {
		g.raws = append(g.raws, containers.Raw{
			ID: "id-" + student, Name: naming.Container("intro", student), ImageID: "sha256:old", EngineState: "exited",
			Created: time.Now().Add(-time.Hour),
			Labels: map[string]string{containers.LabelManagedBy: containers.ManagedBy,
				containers.LabelCourse: "intro", containers.LabelStudent: student, containers.LabelSite: site.SiteName(root)},
		})
	}
	s, err := site.New(site.Options{Config: cfg, Root: root, ContainerEngine: g, ImageEngine: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Pass(t.Context(), site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Outcomes) != len(g.raws) {
		t.Fatalf("%d outcomes for %d stale stopped containers: %+v", len(rep.Outcomes), len(g.raws), rep.Actions)
	}
	for _, o := range rep.Outcomes {
		if !o.Done {
			t.Errorf("%s %s not done: %+v", o.Action.Kind, o.Action.Container, o)
		}
	}
	if len(g.removed) != len(g.raws) {
		t.Errorf("removed %d of %d", len(g.removed), len(g.raws))
	}
	if g.peak < g.want {
		t.Errorf("at most %d stop in flight at once, want %d: the site's pass applies one action at a time", g.peak, g.want)
	}
}

// commitConfig writes files (path → content) into dir, makes dir a git
// repository and commits them: a config repo at HEAD. It returns dir.
func commitConfig(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, dir, "init", "-q", "-b", "main")
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "-q", "-m", "config")
	return dir
}
