package containers_test

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
)

// RequireTwoNodesEnv makes a swarm without a worker node fail the two-node
// test instead of skipping it (.ci/twonode.sh up adds one).
const RequireTwoNodesEnv = "NBH_REQUIRE_SWARM_WORKER"

// TestSwarmTwoNodes: on a swarm of a manager and a worker, placement
// constraints put one student on each node; the image comes from the
// registry on both; one observation (three calls) gives each server's own
// node address and port, spawn reaches each there, and a student stopped
// and started again comes back on the worker.
func TestSwarmTwoNodes(t *testing.T) {
	cli, reg := requireSwarm(t)
	ctx := t.Context()
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := map[swarm.NodeRole]string{}
	for _, n := range nodes {
		if n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive {
			addr[n.Spec.Role] = n.Status.Addr
		}
	}
	if addr[swarm.NodeRoleWorker] == "" {
		msg := "no ready worker node in the swarm (.ci/twonode.sh up adds one)"
		if os.Getenv(RequireTwoNodesEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if addr[swarm.NodeRoleWorker] == addr[swarm.NodeRoleManager] {
		t.Fatalf("worker and manager share the address %s: the test could not tell them apart", addr[swarm.NodeRoleManager])
	}

	prefix := fmt.Sprintf("nbhtest-sw2n%d", time.Now().UnixNano()%1e8)
	img := prefix + "-img"
	repo := imageref.Repository(prefix, img) // the site's repository (the site is named prefix)
	cleanupSwarm(t, cli, prefix, repo, reg)
	pushFakeImage(t, cli, reg, img, repo)

	yaml := fmt.Sprintf(`version: 1
engine: {kind: swarm, registry: %[1]s}
defaults:
  container:
    command: [/fakejupyter, --port, "8888", --base-url, "{prefix}"]
    mounts: []
courses:
  %[2]s-w: {repo: /srv/unused, image: %[3]s, container: {constraints: [node.role==worker]}}
  %[2]s-m: {repo: /srv/unused, image: %[3]s, container: {constraints: [node.role==manager]}}
`, reg, prefix, img)
	cfg, _, err := manifest.Parse("courses.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	eng := containers.NewSwarm(cli, reg, "")
	var mu sync.Mutex
	calls := 0
	eng.Calls = func(string) { mu.Lock(); calls++; mu.Unlock() }
	m := containers.New(eng, nil, nil)
	m.Site = prefix
	m.Tokens = studentTokens{} // a Swarm server is never made without one (fakejupyter takes any)
	opts := containers.SpawnOptions{Root: t.TempDir(), UID: "1000"}

	want := map[string]string{prefix + "-w": addr[swarm.NodeRoleWorker], prefix + "-m": addr[swarm.NodeRoleManager]}
	for course, host := range want {
		co, err := cfg.Course(course)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := m.Spawn(ctx, co, "alice", opts)
		if err != nil {
			t.Fatalf("spawn on %s: %v", course, err)
		}
		if sp.Host != host || !strings.HasPrefix(sp.URL, "http://"+host+":") {
			t.Errorf("%s spawned on %s (%s), want node %s", course, sp.Host, sp.URL, host)
		}
	}

	mu.Lock()
	calls = 0
	mu.Unlock()
	cs, err := m.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if calls != 3 {
		t.Errorf("one observation made %d engine calls, want 3", calls)
	}
	mu.Unlock()
	got := map[string]string{}
	for _, c := range cs {
		if c.State == containers.Running && c.Port != 0 {
			got[c.Course] = c.Host
		}
	}
	for course, host := range want {
		if got[course] != host {
			t.Errorf("observed %s on %q, want %s (all: %v)", course, got[course], host, got)
		}
	}

	// Stopped (scaled to 0) and spawned again: back on the worker.
	w := prefix + "-w"
	c, err := m.Get(ctx, w, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	co, _ := cfg.Course(w)
	sp, err := m.Spawn(ctx, co, "alice", opts)
	if err != nil || sp.State != containers.Started || sp.Host != addr[swarm.NodeRoleWorker] {
		t.Fatalf("respawn on the worker: %+v, %v", sp, err)
	}
}

// pushFakeImage builds the fake Jupyter server as image img into
// repo:latest (FROM scratch), pushes it to reg and returns the digest
// reference services run.
func pushFakeImage(t *testing.T, cli *client.Client, reg, img, repo string) string {
	t.Helper()
	ctx := t.Context()
	bin, err := os.ReadFile(fjtest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	// The build labels make it an image the site built: no other is served.
	df := fmt.Sprintf("FROM scratch\nCOPY fakejupyter /fakejupyter\nLABEL %s=%s %s=%s\nCMD [\"/fakejupyter\"]\n",
		images.LabelImage, img, images.LabelBuildKey, strings.Repeat("c", 64))
	ref := reg + "/" + repo + ":k1"
	if _, err := testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte(df)}, {Name: "fakejupyter", Mode: 0o755, Data: bin}}, repo+":latest", ref); err != nil {
		t.Fatal(err)
	}
	rc, err := cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: images.RegistryAuth("", "")})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if strings.Contains(string(out), `"error"`) {
		t.Fatalf("push %s: %s", ref, out)
	}
	refs, err := containers.NewSwarm(cli, reg, "").Images(ctx, []string{repo + ":latest"})
	if err != nil || refs[repo+":latest"].ID == "" {
		t.Fatalf("no digest for %s after the push: %v, %v", repo, refs, err)
	}
	return refs[repo+":latest"].ID
}

// studentTokens derives a token from the student's name.
type studentTokens struct{}

func (studentTokens) For(_, student string) (string, error) { return "tok-" + student, nil }
