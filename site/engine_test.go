package site_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/site"
)

// recordingEngine is a containers.Engine that records which calls reach it
// and has no containers and no images.
type recordingEngine struct {
	mu    sync.Mutex
	calls []string
}

var _ containers.Engine = (*recordingEngine)(nil)

func (e *recordingEngine) rec(op string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, op)
}

func (e *recordingEngine) got() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

func (e *recordingEngine) List(context.Context) ([]containers.Raw, error) {
	e.rec("List")
	return nil, nil
}

func (e *recordingEngine) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	e.rec("Images")
	return map[string]containers.Image{}, nil
}

func (e *recordingEngine) Inspect(_ context.Context, name string) (containers.Raw, error) {
	e.rec("Inspect")
	return containers.Raw{}, containers.ErrNotFound
}

func (e *recordingEngine) Create(context.Context, containers.Spec) (string, error) {
	e.rec("Create")
	return "", errors.New("no")
}

func (e *recordingEngine) Start(context.Context, string) error { e.rec("Start"); return nil }

func (e *recordingEngine) Stop(context.Context, string, time.Duration) error {
	e.rec("Stop")
	return nil
}

func (e *recordingEngine) Remove(context.Context, string) error { e.rec("Remove"); return nil }

// TestEngineChosenInCoursesYAML: a site whose courses.yaml says
// engine.kind: swarm spawns through the Swarm engine, not the local one;
// without it, through the local one.
func TestEngineChosenInCoursesYAML(t *testing.T) {
	tests := []struct {
		name, engine string
		wantSwarm    bool
	}{
		{"local by default", "", false},
		{"swarm", "engine: {kind: swarm, registry: 127.0.0.1:5000}\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			yaml := "version: 1\n" + tt.engine + "courses:\n  a: {repo: " + filepath.Join(dir, "none") + "}\n"
			config := commitConfig(t, filepath.Join(dir, "config"), map[string]string{"courses.yaml": yaml})
			local, sw := &recordingEngine{}, &recordingEngine{}
			st, err := site.New(site.Options{Config: config, Root: filepath.Join(dir, "root"),
				ContainerEngine: local, Engines: map[string]containers.Engine{"swarm": sw}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Spawn(t.Context(), "a", "alice", "1000")
			if !errors.Is(err, containers.ErrImageNotBuilt) {
				t.Fatalf("spawn: %v; want image not built (no image anywhere)", err)
			}
			used, unused := local, sw
			if tt.wantSwarm {
				used, unused = sw, local
			}
			if len(used.got()) == 0 || len(unused.got()) != 0 {
				t.Errorf("calls: chosen engine %v, other engine %v", used.got(), unused.got())
			}
		})
	}
}

// imageEngine is a recordingEngine that has the site's build of every image
// asked for, and records the spec of the container it is asked to create
// (then refuses it: the spec is what the test reads).
type imageEngine struct {
	recordingEngine
	specs []containers.Spec
	root  string // of the site (for its label)
}

func (e *imageEngine) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	e.rec("Images")
	out := map[string]containers.Image{}
	for _, r := range refs {
		name := r[strings.LastIndex(r[:strings.LastIndex(r, ":")], "/")+1 : strings.LastIndex(r, ":")]
		out[r] = containers.Image{ID: "127.0.0.1:5000/" + r + "@sha256:0", Labels: map[string]string{
			images.LabelImage: name, images.LabelBuildKey: "k"}}
	}
	return out, nil
}

func (e *imageEngine) Create(_ context.Context, spec containers.Spec) (string, error) {
	e.mu.Lock()
	e.specs = append(e.specs, spec)
	e.mu.Unlock()
	return "", errors.New("refused by the test")
}

// TestSwarmServerHasToken: with every default (no container.token), a
// student's server on Swarm gets the token the site derives for it, the
// one the front door and the probe send — not none, which would let
// Jupyter make up its own and refuse them both.
func TestSwarmServerHasToken(t *testing.T) {
	dir := t.TempDir()
	yaml := "version: 1\nengine: {kind: swarm, registry: 127.0.0.1:5000}\ncourses:\n  a: {repo: " + filepath.Join(dir, "none") + "}\n"
	config := commitConfig(t, filepath.Join(dir, "config"), map[string]string{"courses.yaml": yaml})
	sw := &imageEngine{}
	st, err := site.New(site.Options{Config: config, Root: filepath.Join(dir, "root"),
		ContainerEngine: &recordingEngine{}, Engines: map[string]containers.Engine{"swarm": sw}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Spawn(t.Context(), "a", "alice", "1000"); err == nil {
		t.Fatal("spawn succeeded; the test engine refuses every container")
	}
	want, err := st.ServerToken(t.Context(), "a", "alice", 0, "1000")
	if err != nil || want == "" {
		t.Fatalf("the site's token for alice: %q, %v", want, err)
	}
	if len(sw.specs) != 1 {
		t.Fatalf("containers asked of the Swarm engine: %d, want 1", len(sw.specs))
	}
	if !slices.Contains(sw.specs[0].Env, containers.TokenEnv+"="+want) {
		t.Errorf("service env has no %s with the site's token (%d variables)", containers.TokenEnv, len(sw.specs[0].Env))
	}
}

// cpuEngine is a local engine that can read CPU time (as Docker's can),
// and records when it is asked.
type cpuEngine struct{ recordingEngine }

func (e *cpuEngine) CPUTime(context.Context, string) (time.Duration, error) {
	e.rec("CPUTime")
	return 0, errors.New("no such container")
}

// runningServices is a Swarm engine whose List shows n running students'
// services, each with its task's container.
type runningServices struct {
	imageEngine
	n int
}

func (e *runningServices) List(context.Context) ([]containers.Raw, error) {
	e.rec("List")
	var out []containers.Raw
	for i := range e.n {
		student := fmt.Sprintf("s%d", i)
		out = append(out, containers.Raw{ID: "svc" + student, Name: naming.Container("a", student), EngineState: "running",
			StartedAt: time.Now(), Ports: map[int]int{8888: 1}, Host: "127.0.0.1", Task: "ctr" + student,
			Labels: map[string]string{containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: "a",
				containers.LabelStudent: student, containers.LabelSite: site.SiteName(e.root)}})
	}
	return out, nil
}

// TestSwarmPlanAsksNothingPerStudent: a plan on Swarm lists the services
// (and the images) once, and asks no engine anything per student — the
// local engine used to be asked the stats of each service's ID (404).
func TestSwarmPlanAsksNothingPerStudent(t *testing.T) {
	dir := t.TempDir()
	yaml := "version: 1\nengine: {kind: swarm, registry: 127.0.0.1:5000}\ncourses:\n  a: {repo: .}\n"
	config := commitConfig(t, filepath.Join(dir, "config"), map[string]string{"courses.yaml": yaml})
	root := filepath.Join(dir, "root")
	local, sw := &cpuEngine{}, &runningServices{n: 5}
	sw.root = root
	st, err := site.New(site.Options{Config: config, Root: root, ContainerEngine: local, Engines: map[string]containers.Engine{"swarm": sw}, ImageEngine: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pull(t.Context()); err != nil {
		t.Fatal(err)
	}
	plan, err := st.Plan(t.Context(), site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Actions) != sw.n {
		t.Fatalf("plan: %d actions, want one per student (%d): %+v", len(plan.Actions), sw.n, plan.Actions)
	}
	if got := local.got(); len(got) != 0 {
		t.Errorf("the local engine was asked %v during a Swarm plan", got)
	}
	got := sw.got()
	slices.Sort(got)
	if !slices.Equal(got, []string{"Images", "List"}) {
		t.Errorf("Swarm engine calls: %v, want one Images and one List", got)
	}
}
