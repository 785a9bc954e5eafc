package site

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// warmEngine is a container engine whose containers are fake Jupyter
// servers on their host port: enough for a spawn to see its server answer
// and for the probe to read its kernels. Images says every site image is
// at image (a commit changes it).
type warmEngine struct {
	t *testing.T

	mu      sync.Mutex
	image   string
	raws    map[string]*containers.Raw // by name
	servers map[string]*http.Server    // by ID, while running
	jups    map[string]*fakejupyter.Server
	created []string // names, in order
	n       int
}

var _ containers.Engine = (*warmEngine)(nil)

func (e *warmEngine) List(context.Context) ([]containers.Raw, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []containers.Raw
	for _, r := range e.raws {
		out = append(out, *r)
	}
	return out, nil
}

func (e *warmEngine) Images(_ context.Context, refs []string) (map[string]containers.Image, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]containers.Image{}
	for _, r := range refs {
		_, name, _ := strings.Cut(strings.TrimSuffix(r, ":latest"), "/")
		out[r] = containers.Image{ID: e.image, Labels: map[string]string{images.LabelImage: name, images.LabelBuildKey: "0123456789abcdef"}}
	}
	return out, nil
}

func (e *warmEngine) Inspect(_ context.Context, name string) (containers.Raw, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.raws[name]; ok {
		return *r, nil
	}
	return containers.Raw{}, containers.ErrNotFound
}

func (e *warmEngine) Create(_ context.Context, s containers.Spec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.raws[s.Name]; ok {
		return "", fmt.Errorf("name %s taken", s.Name)
	}
	e.n++
	id := fmt.Sprintf("id%d", e.n)
	e.raws[s.Name] = &containers.Raw{ID: id, Name: s.Name, ImageID: s.Image, EngineState: "created", Created: time.Now(),
		Labels: s.Labels, Ports: map[int]int{s.Port: s.HostPort}}
	e.created = append(e.created, s.Name)
	return id, nil
}

func (e *warmEngine) byID(id string) *containers.Raw {
	for _, r := range e.raws {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (e *warmEngine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.byID(id)
	if r == nil {
		return containers.ErrNotFound
	}
	port := 0
	for _, p := range r.Ports {
		port = p
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	j := fakejupyter.New(r.Labels[containers.LabelBasePath], "", nil)
	srv := &http.Server{Handler: j}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	e.servers[id], e.jups[r.Name] = srv, j
	r.EngineState, r.StartedAt, r.Status = "running", time.Now(), "Up 1 second"
	return nil
}

func (e *warmEngine) halt(id string) {
	if srv := e.servers[id]; srv != nil {
		srv.Close()
		delete(e.servers, id)
	}
}

func (e *warmEngine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.halt(id)
	if r := e.byID(id); r != nil {
		r.EngineState, r.Status = "exited", "Exited (0)"
	}
	return nil
}

func (e *warmEngine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.halt(id)
	if r := e.byID(id); r != nil {
		delete(e.raws, r.Name)
	}
	return nil
}

func (e *warmEngine) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.servers {
		e.halt(id)
	}
}

// state returns the engine state and image of a container, "" if none.
func (e *warmEngine) state(name string) (string, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.raws[name]; ok {
		return r.EngineState, r.ImageID
	}
	return "", ""
}

// visit makes name's server show a kernel last active at t.
func (e *warmEngine) visit(name string, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jups[name].SetKernels([]fakejupyter.Kernel{{ID: "k1", Name: "python3", LastActivity: t.UTC(), ExecutionState: "idle"}})
}

// warmNoImages is an image engine with no images and no containers: the
// pass's pruning of old builds finds nothing to do.
type warmNoImages struct{ images.Engine }

func (warmNoImages) ImageList(context.Context, ...string) ([]images.ImageInfo, error) {
	return nil, nil
}

func (warmNoImages) ContainerList(context.Context, ...string) ([]string, error) { return nil, nil }

func kinds(rep PassReport) map[string]string {
	out := map[string]string{}
	for _, a := range rep.Actions {
		k := string(a.Kind)
		if a.Kind == reconcile.Hold {
			k += "/" + string(a.Guard)
		}
		out[a.Student] += k + " "
	}
	return out
}

// introSite returns a config repo of one course, intro (idle: 30m), with
// more of its settings.
func introSite(t *testing.T, more string) string {
	t.Helper()
	cfg := t.TempDir()
	testenv.Git(t, cfg, "init", "-q", "-b", "main")
	yaml := "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n    idle: 30m\n" +
		// No {uid}: the students have no host account here.
		"    container: {command: [jupyter, lab, \"--ServerApp.base_url=/{port}/\"]}\n" + more
	for name, content := range map[string]string{
		"courses.yaml": yaml,
		"intro/docker-image/nbhosting.Dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(cfg, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, cfg, "add", "-A")
	testenv.Git(t, cfg, "commit", "-qm", "site")
	return cfg
}

// TestPassWarmWindow runs the site's pass over a fake engine with a test
// clock through a warm window: at its opening the students who came in
// the last 30 days are warmed (and nobody else); in the window the idle
// rule spares the unvisited ones; a commit mid-window replaces only the
// servers nobody opened; after the window the unvisited ones are stopped.
func TestPassWarmWindow(t *testing.T) {
	real := time.Now().UTC().Truncate(time.Minute)
	// The window opens at this minute of every day, for 2h.
	window := fmt.Sprintf("%d %d * * *", real.Minute(), real.Hour())
	cfg := introSite(t, "    warm:\n      - {cron: \""+window+"\", for: 2h, students: recent(30d), max: 10}\n")

	root := t.TempDir()
	hist, err := history.Open(filepath.Join(t.TempDir(), "history.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hist.Close() })
	for _, r := range []history.Record{
		{Time: real.Add(-7 * 24 * time.Hour), Student: "ann", Action: "spawn"},
		{Time: real.Add(-6 * 24 * time.Hour), Student: "bob", Action: "spawn"},
		{Time: real.Add(-6 * 24 * time.Hour), Student: "bob", Action: "stop"},
	} {
		r.Kind, r.Course = history.KindAction, "intro"
		if _, err := hist.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	e := &warmEngine{t: t, image: "sha256:v1", raws: map[string]*containers.Raw{}, servers: map[string]*http.Server{}, jups: map[string]*fakejupyter.Server{}}
	t.Cleanup(e.closeAll)
	// What the front door's route table is told of the warm-ups.
	var warmedMu sync.Mutex
	warmed := map[string]int{} // student: port
	s, err := New(Options{Config: cfg, Root: root, ContainerEngine: e, ImageEngine: warmNoImages{}, History: hist,
		Warmed: func(course, student string, sp containers.Spawned) {
			warmedMu.Lock()
			defer warmedMu.Unlock()
			warmed[student] = sp.Port
		}})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) {
		// The plan's clock; the servers' clocks stay real.
		s.clock = func() time.Time { return time.Now().Add(d) }
	}
	pass := func() PassReport {
		t.Helper()
		rep, err := s.Pass(t.Context(), PassOptions{})
		if err != nil {
			t.Fatalf("pass: %v\n%+v", err, rep.Outcomes)
		}
		return rep
	}
	ann, bob := naming.Container("intro", "ann"), naming.Container("intro", "bob")

	// The window opens: ann and bob came this month, so both are warmed
	// on the current image.
	at(0)
	rep := pass()
	if k := kinds(rep); k["ann"] != "warm " || k["bob"] != "warm " || len(k) != 2 {
		t.Fatalf("at the opening: %v", k)
	}
	for _, n := range []string{ann, bob} {
		if st, img := e.state(n); st != "running" || img != "sha256:v1" {
			t.Fatalf("%s: %s on %s, want running on v1", n, st, img)
		}
	}
	warmedMu.Lock()
	if len(warmed) != 2 || warmed["ann"] == 0 || warmed["bob"] == 0 {
		t.Errorf("the front door was told of %v, want ann's and bob's servers with their ports", warmed)
	}
	warmedMu.Unlock()

	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c := st.Courses[0]; c.Warm != 2 || c.WarmHeld != 0 || c.WarmPending != 0 || !c.NextWarm.After(time.Now()) {
		t.Errorf("status: %d warm, %d held, %d pending, next window %s", c.Warm, c.WarmHeld, c.WarmPending, c.NextWarm)
	}

	// 40 minutes in: ann opened hers 5 minutes ago; bob never came and his
	// server is idle beyond the idle time (30m), but the window holds it.
	e.visit(ann, time.Now().Add(35*time.Minute))
	at(40 * time.Minute)
	rep = pass()
	if k := kinds(rep); k["ann"] != "keep " || k["bob"] != "hold/warm " {
		t.Fatalf("in the window: %v", k)
	}

	// A commit mid-window: bob's server, never opened, is replaced on the
	// new image; ann's, in use, is left to the normal rules.
	e.mu.Lock()
	e.image = "sha256:v2"
	e.mu.Unlock()
	at(45 * time.Minute)
	rep = pass()
	if k := kinds(rep); k["ann"] != "report-stale " || k["bob"] != "remove warm " {
		t.Fatalf("after the commit: %v", k)
	}
	if st, img := e.state(ann); st != "running" || img != "sha256:v1" {
		t.Errorf("ann: %s on %s, want running on v1 (in use)", st, img)
	}
	if st, img := e.state(bob); st != "running" || img != "sha256:v2" {
		t.Errorf("bob: %s on %s, want running on v2 (replaced)", st, img)
	}

	// After the window, bob's server, never visited, is stopped by the
	// idle rule like any other; nobody is warmed.
	at(2*time.Hour + 10*time.Minute)
	rep = pass()
	if k := kinds(rep); k["bob"] != "stop " {
		t.Fatalf("after the window: %v", k)
	}
	if st, _ := e.state(bob); st != "exited" {
		t.Errorf("bob after the window: %s, want exited", st)
	}
	// The warm-ups are in the history as warm, so they do not make a
	// student expected.
	recs, err := hist.Query(t.Context(), history.Query{Kinds: []history.Kind{history.KindAction}, Course: "intro"})
	if err != nil {
		t.Fatal(err)
	}
	warm, spawn := 0, 0
	for _, r := range recs {
		switch r.Action {
		case "warm":
			warm++
		case "spawn":
			spawn++
		}
	}
	if warm != 3 || spawn != 2 {
		t.Errorf("history: %d warm, %d spawn records; want 3 and 2", warm, spawn)
	}
}

// TestExpectedFromFile: file:PATH lists the students in the course's
// checkout, one a line, comments and blank lines aside; names that cannot
// be a student are left out, duplicates once.
func TestExpectedFromFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(rootdir.Course(root, "intro"), "class")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	list := "# Monday group\nzoe\nann  # late on Mondays\n\nann\n../etc\n"
	if err := os.WriteFile(filepath.Join(dir, "monday.txt"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Site{opts: Options{Root: root}}
	co := manifest.Course{Name: "intro"}
	got, err := s.expected(t.Context(), co, manifest.Warm{Students: "file:class/monday.txt"}, time.Now())
	if err != nil || strings.Join(got, ",") != "ann,zoe" {
		t.Errorf("expected = %v, %v; want [ann zoe]", got, err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "out.txt")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.expected(t.Context(), co, manifest.Warm{Students: "file:class/out.txt"}, time.Now()); err == nil {
		t.Errorf("a list outside the checkout was read: %v", got)
	}
	if _, err := s.expected(t.Context(), co, manifest.Warm{Students: "file:class/none.txt"}, time.Now()); err == nil {
		t.Error("a missing list gave no error")
	}
	if _, err := s.expected(t.Context(), co, manifest.Warm{Students: "recent(30d)"}, time.Now()); err == nil {
		t.Error("recent() without a history gave no error")
	}
}

// The daemon runs the next pass at once only when this one warmed some
// servers and left others to it.
func TestWarmLeft(t *testing.T) {
	warmUp := reconcile.Action{Kind: reconcile.WarmUp, Student: "ann"}
	paced := reconcile.Action{Kind: reconcile.Hold, Held: reconcile.WarmUp, Guard: reconcile.GuardWarmPace, Student: "bob"}
	capped := reconcile.Action{Kind: reconcile.Hold, Held: reconcile.WarmUp, Guard: reconcile.GuardWarmMax, Student: "bob"}
	done := reconcile.Outcome{Action: warmUp, Done: true}
	failed := reconcile.Outcome{Action: warmUp, Err: fmt.Errorf("no image")}
	stopped := reconcile.Outcome{Action: reconcile.Action{Kind: reconcile.Stop, Student: "cy"}, Done: true}
	for _, tc := range []struct {
		name string
		rep  PassReport
		want bool
	}{
		{name: "warmed some, paced the rest", rep: PassReport{Actions: []reconcile.Action{warmUp, paced}, Outcomes: []reconcile.Outcome{done}}, want: true},
		{name: "warmed all", rep: PassReport{Actions: []reconcile.Action{warmUp}, Outcomes: []reconcile.Outcome{done}}},
		{name: "the rest held by a cap: a pass changes nothing", rep: PassReport{Actions: []reconcile.Action{warmUp, capped}, Outcomes: []reconcile.Outcome{done}}},
		{name: "every warm-up failed: the schedule retries", rep: PassReport{Actions: []reconcile.Action{warmUp, paced}, Outcomes: []reconcile.Outcome{failed}}},
		{name: "only retirements done", rep: PassReport{Actions: []reconcile.Action{paced}, Outcomes: []reconcile.Outcome{stopped}}},
		{name: "no pass", rep: PassReport{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rep.WarmLeft(); got != tc.want {
				t.Errorf("WarmLeft = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHandOutCountsAsUse: a student handed a server that has run for
// hours (no kernel) is not idle since its start, only since the hand-out;
// a warm-up is not a hand-out.
func TestHandOutCountsAsUse(t *testing.T) {
	cfg := introSite(t, "")
	e := &warmEngine{t: t, image: "sha256:v1", raws: map[string]*containers.Raw{}, servers: map[string]*http.Server{}, jups: map[string]*fakejupyter.Server{}}
	t.Cleanup(e.closeAll)
	s, err := New(Options{Config: cfg, Root: t.TempDir(), ContainerEngine: e, ImageEngine: warmNoImages{}})
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := naming.Container("intro", "alice"), naming.Container("intro", "bob")
	// Both servers have run for 3 hours, unused; alice's is handed to her
	// now, bob's is started as a warm-up would.
	for _, student := range []string{"alice", "bob"} {
		if _, err := s.spawn(t.Context(), "intro", student, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	for _, n := range []string{alice, bob} {
		r := e.raws[n]
		r.Created, r.StartedAt, r.Status = r.Created.Add(-3*time.Hour), r.StartedAt.Add(-3*time.Hour), "Up 3 hours"
	}
	e.mu.Unlock()
	if _, err := s.Spawn(t.Context(), "intro", "alice", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after      time.Duration
		alice, bob string
	}{
		{10 * time.Minute, "keep ", "stop "},
		{40 * time.Minute, "stop ", "keep "}, // bob's, stopped, stays
	} {
		s.clock = func() time.Time { return time.Now().Add(tc.after) }
		rep, err := s.Pass(t.Context(), PassOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if k := kinds(rep); k["alice"] != tc.alice || k["bob"] != tc.bob {
			t.Errorf("%s after the hand-out: %v, want alice %q, bob %q", tc.after, k, tc.alice, tc.bob)
		}
	}
}
