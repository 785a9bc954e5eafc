package containers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// RequireSwarmEnv makes a missing swarm or registry fail the Swarm tests
// instead of skipping them (CI sets it; .ci/swarm.sh up starts both).
const RequireSwarmEnv = "NBH_REQUIRE_SWARM"

// requireSwarm returns a client of an engine that is a swarm manager, and
// the registry (NBH_REGISTRY, default 127.0.0.1:5000) that answers.
func requireSwarm(t *testing.T) (*client.Client, string) {
	t.Helper()
	if os.Getenv(testenv.RequirePodmanEnv) == "1" {
		t.Skip("podman has no swarm mode: the Swarm engine is Docker's")
	}
	cli := testenv.RequireDockerFor(t, RequireSwarmEnv)
	fail := t.Skipf
	if os.Getenv(RequireSwarmEnv) == "1" {
		fail = t.Fatalf
	}
	info, err := cli.Info(t.Context())
	if err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		fail("the engine is not a swarm manager (run .ci/swarm.sh up; %s=1 makes this fail): %v", RequireSwarmEnv, err)
	}
	reg := os.Getenv("NBH_REGISTRY")
	if reg == "" {
		reg = "127.0.0.1:5000"
	}
	resp, err := http.Get("http://" + reg + "/v2/")
	if err != nil {
		fail("no registry at %s (run .ci/swarm.sh up): %v", reg, err)
	} else {
		resp.Body.Close()
	}
	return cli, reg
}

// cleanupSwarm removes, at cleanup and even when the test failed, every
// service whose name starts with prefix, waits for their containers to go,
// then removes every image tagged image:* or registry/image:*.
func cleanupSwarm(t *testing.T, cli *client.Client, prefix, img, reg string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", prefix))})
		if err != nil {
			t.Errorf("list services to clean up: %v", err)
		}
		for _, s := range svcs {
			if t.Failed() {
				// The task history says why a server did not answer.
				tasks, _ := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", s.ID))})
				for _, tk := range tasks {
					t.Logf("task of %s on %s: desired %s, state %s (%s %s), ports %+v", s.Spec.Name, tk.NodeID, tk.DesiredState,
						tk.Status.State, tk.Status.Message, tk.Status.Err, tk.Status.PortStatus.Ports)
				}
			}
			if strings.HasPrefix(s.Spec.Name, prefix) {
				if err := cli.ServiceRemove(ctx, s.ID); err != nil {
					t.Errorf("remove service %s: %v", s.Spec.Name, err)
				}
			}
		}
		for {
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
			if err != nil {
				t.Errorf("list containers of removed services: %v", err)
				break
			}
			if len(cs) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Errorf("containers of removed services still there: %d", len(cs))
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		for _, ref := range []string{img, reg + "/" + img} {
			list, err := cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", ref))})
			if err != nil {
				t.Errorf("list images %s: %v", ref, err)
				continue
			}
			for _, im := range list {
				if _, err := cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !strings.Contains(err.Error(), "No such image") {
					t.Errorf("remove image %s: %v", im.ID, err)
				}
			}
		}
	})
}

// configRepo commits files to a git repository in a temp dir and returns
// the tree of that commit, as the site reads it.
func configRepo(t *testing.T, dir string, files map[string]string) *object.Tree {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		if repo, err = git.PlainInit(dir, false); err != nil {
			t.Fatal(err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}
	h, err := wt.Commit("config", &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// storyYAML is the swarm site of the story: the real Jupyter server under
// the stable prefix, with a token the probe sends.
const storyYAML = `version: 1
engine: {kind: swarm, registry: %[1]s}
defaults:
  idle: 1m
  container:
    token: "tok-{student}"
    command: [start-in-dir-as-uid.sh, /home/jovyan, "{uid}", jupyter, server, --ip=0.0.0.0, --port=8888,
              --no-browser, "--ServerApp.base_url={prefix}", "--ServerApp.token=tok-{student}"]
    # On the manager: a test worker node (.ci/twonode.sh) stores images
    # with vfs, where pulling the 288 MB Jupyter image is slow.
    constraints: [node.role==manager]
images:
  %[2]s: {dockerfile: images/%[2]s.dockerfile}
courses:
  %[3]s: {repo: /srv/unused, image: %[2]s}
`

const storyDockerfile = "FROM " + jupytertest.Image + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nENV NBH_STORY=%s\n"

// TestSwarmStory is a student's life on a real single-node swarm with a
// real registry and the real Jupyter server: the course image is built,
// pushed and served by digest; the student's service spawns on the node's
// address under a stable prefix; the probe reaches it there; the container
// pass stops it when idle (scale to 0); it comes back with the same files;
// a new build rolls out by digest once the student is idle.
func TestSwarmStory(t *testing.T) {
	t.Parallel()
	cli, reg := requireSwarm(t)
	if _, err := cli.ImageInspect(t.Context(), jupytertest.Image); err != nil {
		if os.Getenv(jupytertest.RequireEnv) == "1" || os.Getenv(RequireSwarmEnv) == "1" {
			t.Fatalf("%s missing (testimages/jupyter/build.sh): %v", jupytertest.Image, err)
		}
		t.Skipf("%s missing (testimages/jupyter/build.sh): %v", jupytertest.Image, err)
	}
	ctx := t.Context()
	prefix := fmt.Sprintf("nbhtest-sw%d", time.Now().UnixNano()%1e8)
	img, course, student := prefix+"-img", prefix+"-c", "alice"
	// The site's builds of img live in its own repository.
	repo := imageref.Repository(prefix, img)
	cleanupSwarm(t, cli, prefix, repo, reg)

	// Build and push.
	cfgDir, root := t.TempDir(), t.TempDir()
	yaml := fmt.Sprintf(storyYAML, reg, img, course)
	build := func(version string) (images.Result, *manifest.Config) {
		t.Helper()
		tree := configRepo(t, cfgDir, map[string]string{
			"courses.yaml":                  yaml,
			"images/" + img + ".dockerfile": fmt.Sprintf(storyDockerfile, version),
		})
		cfg, _, err := manifest.Parse("courses.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := images.NewSpec(cfg, img, images.Trees{Config: tree, ConfigSource: "test@" + version,
			Course: func(string) (*object.Tree, string, string, error) { return nil, "", "", nil }})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := images.NewDockerEngine()
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		b := images.NewBuilder(eng, images.Options{Concurrency: 1, Registry: reg, Timeout: 10 * time.Minute, Site: prefix})
		res, err := b.Ensure(ctx, spec, images.EnsureOptions{})
		if err != nil {
			t.Fatalf("build %s: %v\n%s", version, err, res.Log)
		}
		if !strings.Contains(res.Log, "pushed "+reg+"/"+repo+"@sha256:") {
			t.Fatalf("build %s was not pushed:\n%s", version, res.Log)
		}
		return res, cfg
	}
	_, cfg := build("v1")
	co, err := cfg.Course(course)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "courses", course), 0o755); err != nil {
		t.Fatal(err)
	}

	eng := containers.NewSwarm(cli, reg, "")
	m := containers.New(eng, nil, nil)
	m.Site = prefix
	cur, err := m.CurrentImages(ctx, []string{img})
	if err != nil || !strings.HasPrefix(cur[img], reg+"/"+repo+"@sha256:") {
		t.Fatalf("current image = %q, %v; want the registry digest", cur[img], err)
	}
	v1 := cur[img]

	// Spawn: a service on the node's address, under the stable prefix.
	opts := containers.SpawnOptions{Root: root, UID: "1000"}
	sp, err := m.Spawn(ctx, co, student, opts)
	if err != nil {
		t.Fatal(err)
	}
	node := nodeAddr(t, cli)
	if sp.State != containers.Created || sp.Host != node || sp.Host == "127.0.0.1" ||
		sp.URL != fmt.Sprintf("http://%s:%d/u/%s/%s/", node, sp.Port, course, student) {
		t.Fatalf("spawned %+v; want created on node %s under /u/%s/%s/", sp, node, course, student)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, sp.Name, swarm.ServiceInspectOptions{})
	if err != nil || svc.Spec.TaskTemplate.ContainerSpec.Image != v1 || svc.Spec.TaskTemplate.ContainerSpec.Labels[containers.LabelStudent] != student {
		t.Fatalf("service %s: image %q, container labels %v (%v); want %s and the student labels",
			sp.Name, svc.Spec.TaskTemplate.ContainerSpec.Image, svc.Spec.TaskTemplate.ContainerSpec.Labels, err, v1)
	}

	// The student saves a file through the server.
	put(t, sp.URL+"api/contents/work/story.txt", "tok-"+student, `{"type":"file","format":"text","content":"written on v1"}`)
	if b, err := os.ReadFile(filepath.Join(root, "students", student, course, "story.txt")); err != nil || string(b) != "written on v1" {
		t.Fatalf("file on the host mount: %q, %v", b, err)
	}

	// The container pass probes it through the node address, and stops it
	// once idle (a plan made as if the idle time had passed).
	pass := &reconcile.Pass{Containers: m, Prober: activity.New(), Root: root, Concurrency: 2}
	runPass := func(at time.Duration) []reconcile.Action {
		t.Helper()
		obs, err := pass.Observe(ctx, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range obs.Containers {
			if a := obs.Activity[c.ID]; c.State == containers.Running && a.State != activity.Answered {
				t.Fatalf("probe of %s at %s: %+v; want answered", c.Name, m.URLOf(c), a)
			}
		}
		plan := reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, time.Now().Add(at))
		ap := &reconcile.Applier{Exec: m, Locks: m.Locks(), Concurrency: 2}
		if _, err := ap.Apply(ctx, plan); err != nil {
			t.Fatal(err)
		}
		return plan
	}
	if plan := runPass(0); len(plan) != 1 || plan[0].Kind != reconcile.Keep {
		t.Fatalf("first pass: %+v; want keep", plan)
	}
	runPass(2 * time.Minute)
	c, err := m.Get(ctx, course, student)
	if err != nil || c.State != containers.Stopped {
		t.Fatalf("after the idle pass: %+v, %v; want stopped", c, err)
	}
	svc, _, _ = cli.ServiceInspectWithRaw(ctx, sp.Name, swarm.ServiceInspectOptions{})
	if r := svc.Spec.Mode.Replicated.Replicas; r == nil || *r != 0 {
		t.Fatalf("stopped service has replicas %v, want 0", r)
	}

	// Respawn: started again (scale to 1), same files.
	sp2, err := m.Spawn(ctx, co, student, opts)
	if err != nil || sp2.State != containers.Started || sp2.ID != sp.ID {
		t.Fatalf("respawn: %+v, %v; want the same service started", sp2, err)
	}
	if got := get(t, sp2.URL+"api/contents/work/story.txt", "tok-"+student); !strings.Contains(got, "written on v1") {
		t.Fatalf("after respawn the file reads %s", got)
	}

	// Roll-out: a new build gets a new digest; the idle student's stale
	// service is removed by the pass and made again from the new digest,
	// files kept.
	build("v2")
	cur, err = m.CurrentImages(ctx, []string{img})
	if err != nil || cur[img] == v1 || !strings.HasPrefix(cur[img], reg+"/"+repo+"@sha256:") {
		t.Fatalf("current image after v2 = %q, %v; want a new digest", cur[img], err)
	}
	plan := runPass(2 * time.Minute)
	if len(plan) != 1 || plan[0].Kind != reconcile.Remove {
		t.Fatalf("roll-out pass: %+v; want remove (idle, stale)", plan)
	}
	sp3, err := m.Spawn(ctx, co, student, opts)
	if err != nil || sp3.State != containers.Created {
		t.Fatalf("spawn after roll-out: %+v, %v", sp3, err)
	}
	svc, _, err = cli.ServiceInspectWithRaw(ctx, sp3.Name, swarm.ServiceInspectOptions{})
	if err != nil || svc.Spec.TaskTemplate.ContainerSpec.Image != cur[img] {
		t.Fatalf("rolled-out service runs %q (%v), want %s", svc.Spec.TaskTemplate.ContainerSpec.Image, err, cur[img])
	}
	if got := get(t, sp3.URL+"api/contents/work/story.txt", "tok-"+student); !strings.Contains(got, "written on v1") {
		t.Fatalf("after roll-out the file reads %s", got)
	}
}

func nodeAddr(t *testing.T, cli *client.Client) string {
	t.Helper()
	info, err := cli.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.Swarm.NodeAddr
}

func put(t *testing.T, url, token, body string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, url, strings.NewReader(body))
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %s %s", url, resp.Status, b)
	}
}

func get(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}
