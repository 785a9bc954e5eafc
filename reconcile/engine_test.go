package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
)

// requireDocker returns a client of the real engine; it skips without one,
// or fails when NBH_REQUIRE_DOCKER=1.
func requireDocker(t *testing.T, opts ...client.Opt) *client.Client {
	return fjtest.RequireDocker(t, opts...)
}

type site struct {
	cli    *client.Client
	cfg    *manifest.Config
	co     manifest.Course
	v1, v2 string
	m      *containers.Manager
	pass   *Pass
	root   string
}

// ownContainers hides the student containers of other tests sharing the
// engine (those of other courses): a pass here must neither count nor
// touch them. Containers that are not student containers at all stay
// visible, so that the product's own filtering is what leaves them alone.
type ownContainers struct {
	containers.Engine
	prefix string // "<course>-x-"
}

func (o ownContainers) List(ctx context.Context) ([]containers.Raw, error) {
	all, err := o.Engine.List(ctx)
	var out []containers.Raw
	for _, r := range all {
		_, _, student := naming.Split(r.Name)
		if strings.HasPrefix(r.Name, o.prefix) || (!student && r.Labels[containers.LabelManagedBy] == "") {
			out = append(out, r)
		}
	}
	return out, err
}

// newSite builds images v1 and v2 of a course, with v1 as :latest, and a
// Pass over the real engine.
func newSite(t *testing.T, cli *client.Client) *site {
	t.Helper()
	name := "nbhtest-ctr-" + fjtest.Suffix()
	bin := fjtest.Binary(t)
	s := &site{cli: cli, root: t.TempDir()}
	s.v1 = fjtest.Build(t, cli, bin, name+":v1", name+":latest")
	s.v2 = fjtest.Build(t, cli, bin, name+":v2")
	fjtest.CleanupContainers(t, cli, name+naming.Sep)
	s.co = manifest.Course{Name: name, Idle: manifest.Duration(2 * time.Hour), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 50,
		Container: manifest.Container{
			Port: 8888, Memory: 64 << 20,
			Command: []string{"/fakejupyter", "--port=8888", "--base-url=/{port}/", "--token={student}-tok"},
			Mounts:  []string{"{root}/students/{student}/{course}:/home/jovyan/work"},
			Token:   "{student}-tok",
		}}
	s.cfg = &manifest.Config{Version: 1, Courses: map[string]manifest.Course{name: s.co}, Defaults: manifest.Defaults{
		Idle: manifest.Duration(2 * time.Hour), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 50}}
	// Only this test's containers: the engine is shared with other tests.
	s.m = containers.New(ownContainers{containers.NewDocker(cli), name + naming.Sep}, nil, nil)
	p := activity.New()
	p.SecondLook = 50 * time.Millisecond
	s.pass = &Pass{Containers: s.m, Prober: p, Root: s.root, Concurrency: 4}
	return s
}

func (s *site) spawn(t *testing.T, student string) containers.Spawned {
	t.Helper()
	got, err := s.m.Spawn(t.Context(), s.co, student, containers.SpawnOptions{Root: s.root, UID: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func setKernels(t *testing.T, sp containers.Spawned, token string, ks []fakejupyter.Kernel) {
	t.Helper()
	b, _ := json.Marshal(ks)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, sp.URL+"fake/kernels", bytes.NewReader(b))
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("set kernels: %v %v", resp, err)
	}
	resp.Body.Close()
}

func byStudent(as []Action) map[string]Action {
	m := map[string]Action{}
	for _, a := range as {
		m[a.Student] = a
	}
	return m
}

// A whole roll-out: v1 in service, three students (active,
// idle, stopped), v2 published, one pass.
func TestEngineRollout(t *testing.T) {
	t.Parallel()
	s := newSite(t, requireDocker(t))
	ctx := t.Context()
	alice, bob, carol := s.spawn(t, "alice"), s.spawn(t, "bob"), s.spawn(t, "carol")
	// Fresh servers without kernels, nothing stale: a pass keeps all.
	res, err := s.pass.Run(ctx, s.cfg, false)
	plan, out := res.Actions, res.Outcomes
	if err != nil || len(out) != 0 {
		t.Fatalf("pass on v1: %v, %+v\n%s", err, out, kinds(plan))
	}
	setKernels(t, alice, "alice-tok", []fakejupyter.Kernel{{ID: "k", ExecutionState: "busy", LastActivity: time.Now().Add(-3 * time.Hour)}})
	setKernels(t, bob, "bob-tok", []fakejupyter.Kernel{{ID: "k", ExecutionState: "idle", LastActivity: time.Now().Add(-3 * time.Hour)}})
	if err := s.m.Stop(ctx, carol.ID); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(s.root, "students", "bob", s.co.Name, "notes.txt")
	if err := os.WriteFile(notes, []byte("my work"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Made by hand as nbhosting does (no labels), and one unrelated.
	mk := func(name string) string {
		res, err := s.cli.ContainerCreate(ctx, &container.Config{Image: s.v1, Cmd: []string{"/fakejupyter"}}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	mk(s.co.Name + "-x-dave")
	unrelated := "nbhtest-ctr-unrelated-" + fjtest.Suffix()
	fjtest.CleanupContainers(t, s.cli, unrelated)
	unrelatedID := mk(unrelated)

	fjtest.Tag(t, s.cli, s.v2, s.co.Name+":latest")
	// Three hours later (a server is idle since its start at the most).
	s.pass.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	res, err = s.pass.Run(ctx, s.cfg, false)
	plan, out = res.Actions, res.Outcomes
	if err != nil {
		t.Fatal(err)
	}
	got := byStudent(plan)
	for student, k := range map[string]Kind{"alice": ReportStale, "bob": Remove, "carol": Remove, "dave": Remove} {
		if got[student].Kind != k {
			t.Errorf("%s: %s (%s), want %s", student, got[student].Kind, got[student].Reason, k)
		}
	}
	if len(plan) != 4 {
		t.Errorf("plan has %d actions: %s", len(plan), kinds(plan))
	}
	for _, o := range out {
		if !o.Done {
			t.Errorf("not done: %+v", o)
		}
	}
	cs, err := s.m.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range cs {
		if c.Course == s.co.Name {
			left = append(left, c.Student+":"+string(c.State))
		}
	}
	if !slices.Equal(left, []string{"alice:running"}) {
		t.Errorf("left after the pass: %v", left)
	}
	if _, err := s.cli.ContainerInspect(ctx, unrelatedID); err != nil {
		t.Errorf("unrelated container touched: %v", err)
	}

	// Bob comes back: a new container on v2, his files intact.
	again := s.spawn(t, "bob")
	c, err := s.m.Get(ctx, s.co.Name, "bob")
	if err != nil || again.State != containers.Created || c.ImageID != s.v2 {
		t.Fatalf("bob again: %+v on %s, %v", again, c.ImageID, err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, again.URL+"fake/ls?dir=/home/jovyan/work", nil)
	req.Header.Set("Authorization", "token bob-tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	json.NewDecoder(resp.Body).Decode(&files)
	resp.Body.Close()
	if !slices.Contains(files, "notes.txt") {
		t.Errorf("bob's work dir in the new container: %v", files)
	}
}

// A course removed from courses.yaml keeps its servers' token only in the
// defaults: the probe must send it, or the servers refuse it, never look
// idle and are never removed.
func TestEngineRemovedCourseProbedWithDefaultToken(t *testing.T) {
	t.Parallel()
	s := newSite(t, requireDocker(t))
	bob := s.spawn(t, "bob")
	setKernels(t, bob, "bob-tok", []fakejupyter.Kernel{{ID: "k", ExecutionState: "idle", LastActivity: time.Now().Add(-3 * time.Hour)}})
	cfg := &manifest.Config{Version: 1, Courses: map[string]manifest.Course{}, Defaults: s.cfg.Defaults}
	cfg.Defaults.Container.Token = s.co.Container.Token
	// Only this test's containers count: the engine is shared.
	obs, err := s.pass.Observe(t.Context(), cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if r := obs.Activity[bob.ID]; r.State != activity.Answered {
		t.Fatalf("probe of a removed course's server: %+v, want answered", r)
	}
	// Three hours later (a server is idle since its start at the most).
	a := byStudent(Plan(obs.Desired, obs.Containers, obs.Activity, time.Now().Add(3*time.Hour)))["bob"]
	if a.Kind != Remove {
		t.Errorf("bob's container in a removed course, idle 3h: %s (%s), want remove", a.Kind, a.Reason)
	}
}

// A spawn racing a pass never loses the container it hands out.
func TestEngineSpawnRacesPass(t *testing.T) {
	t.Parallel()
	s := newSite(t, requireDocker(t))
	ctx := t.Context()
	latest := []string{s.v2, s.v1, s.v2}
	for round, img := range latest {
		// Make carol's container stopped and stale, then race.
		sp := s.spawn(t, "carol")
		if err := s.m.Stop(ctx, sp.ID); err != nil {
			t.Fatal(err)
		}
		fjtest.Tag(t, s.cli, img, s.co.Name+":latest")
		var wg sync.WaitGroup
		var got containers.Spawned
		var spawnErr, passErr error
		wg.Go(func() {
			got, spawnErr = s.m.Spawn(ctx, s.co, "carol", containers.SpawnOptions{Root: s.root, UID: "1000"})
		})
		wg.Go(func() { _, passErr = s.pass.Run(ctx, s.cfg, false) })
		wg.Wait()
		if spawnErr != nil || passErr != nil {
			t.Fatalf("round %d: spawn %v, pass %v", round, spawnErr, passErr)
		}
		c, err := s.m.Get(ctx, s.co.Name, "carol")
		if err != nil || c.ID != got.ID || c.State != containers.Running || c.ImageID != img {
			t.Fatalf("round %d: handed out %+v, engine has %+v (%v)", round, got, c, err)
		}
	}

	// Deterministic interleaving: the pass plans to stop an idle server,
	// the student comes back before it applies.
	sp := s.spawn(t, "dan")
	setKernels(t, sp, "dan-tok", []fakejupyter.Kernel{{ID: "k", ExecutionState: "idle", LastActivity: time.Now().Add(-3 * time.Hour)}})
	obs, err := s.pass.Observe(ctx, s.cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	// As seen three hours after its start (a server is idle since its
	// start at the most): the plan is made now, the hand-out after it.
	r := obs.Activity[sp.ID]
	r.LastActivity = time.Now().Add(-3 * time.Hour)
	obs.Activity[sp.ID] = r
	plan := Plan(obs.Desired, obs.Containers, obs.Activity, time.Now())
	if a := byStudent(plan)["dan"]; a.Kind != Stop {
		t.Fatalf("dan: %s (%s), want stop", a.Kind, a.Reason)
	}
	if again := s.spawn(t, "dan"); again.State != containers.Existing {
		t.Fatalf("dan again: %+v", again)
	}
	ap := &Applier{Exec: s.m, Locks: s.m.Locks()}
	out, err := ap.Apply(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Action.Student == "dan" && (o.Done || !strings.Contains(o.Skipped, "handed out")) {
			t.Errorf("dan's stop: %+v", o)
		}
	}
	if c, err := s.m.Get(ctx, s.co.Name, "dan"); err != nil || c.State != containers.Running {
		t.Errorf("dan after the pass: %+v, %v", c, err)
	}
}

// countingTransport counts engine API calls by path: those the engine
// answered with success. A list the engine fails because another test
// removed an image meanwhile (podman: "image not known") is asked again
// (imageref.ListRaced); that retry is the shared engine's, not a call per
// container.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || resp.StatusCode >= 300 {
		return resp, err
	}
	p := r.URL.Path
	if i := strings.Index(p[1:], "/"); strings.HasPrefix(p, "/v1.") && i > 0 {
		p = p[i+1:] // drop the version prefix
	}
	c.mu.Lock()
	c.n[r.Method+" "+p]++
	c.mu.Unlock()
	return resp, err
}

func (c *countingTransport) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// A pass costs the same engine calls over 5 containers as over 30 (probes
// aside: these containers are stopped).
func TestEngineCallsDoNotGrowWithContainers(t *testing.T) {
	t.Parallel()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		var ok bool
		if sock, ok = strings.CutPrefix(h, "unix://"); !ok {
			t.Skip("counting needs the engine on a unix socket")
		}
	}
	ct := &countingTransport{n: map[string]int{}, base: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	counted := requireDocker(t, client.WithHTTPClient(&http.Client{Transport: ct}))
	s := newSite(t, requireDocker(t))
	s.m = containers.New(ownContainers{containers.NewDocker(counted), s.co.Name + naming.Sep}, nil, nil)
	s.pass.Containers = s.m
	ctx := t.Context()
	made := 0
	grow := func(n int) {
		for ; made < n; made++ {
			student := fmt.Sprintf("s%02d", made)
			_, err := s.cli.ContainerCreate(ctx, &container.Config{Image: s.v1, Cmd: []string{"/fakejupyter"}, Labels: map[string]string{
				containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: s.co.Name, containers.LabelStudent: student,
			}}, nil, nil, nil, naming.Container(s.co.Name, student))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	pass := func() map[string]int {
		ct.take()
		res, err := s.pass.Run(ctx, s.cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Actions) != made {
			t.Fatalf("plan over %d containers has %d actions", made, len(res.Actions))
		}
		return ct.take()
	}
	grow(5)
	small := pass()
	delete(small, "GET /_ping") // version negotiation, once per client: not in the next pass
	delete(small, "HEAD /_ping")
	grow(30)
	large := pass()
	t.Logf("engine calls per pass: N=5 %v, N=30 %v", small, large)
	if fmt.Sprint(small) != fmt.Sprint(large) {
		t.Errorf("calls grow with N: N=5 %v, N=30 %v", small, large)
	}
	if total(large) > 2 {
		t.Errorf("a pass makes %d calls, want 2 (one container list, one image list)", total(large))
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
