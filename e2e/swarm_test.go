//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// requireAuthSwarm returns the registry with TLS and htpasswd that
// .ci/swarm.sh serves (NBH_AUTH_REGISTRY) and its credentials file
// (NBH_AUTH_REGISTRY_FILE), after checking that the engine is a swarm
// manager. It skips without them, or fails when NBH_REQUIRE_SWARM=1.
func requireAuthSwarm(t *testing.T, cli *client.Client) (registry, authFile string) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("NBH_REQUIRE_SWARM") == "1" {
		fail = t.Fatalf
	}
	info, err := cli.Info(t.Context())
	if err != nil || info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		fail("the engine is not a swarm manager (run .ci/swarm.sh up): %v", err)
	}
	registry, authFile = os.Getenv("NBH_AUTH_REGISTRY"), os.Getenv("NBH_AUTH_REGISTRY_FILE")
	if registry == "" || authFile == "" {
		fail("NBH_AUTH_REGISTRY and NBH_AUTH_REGISTRY_FILE name the registry with authentication (.ci/swarm.sh up)")
	}
	return registry, authFile
}

// secretsOf returns the forms the registry password can take in output:
// itself, user:password in base64, and the engine's encoded header.
func secretsOf(t *testing.T, authFile, registry string) []string {
	t.Helper()
	b, err := os.ReadFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	enc := cfg.Auths[registry].Auth
	dec, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	user, pw, _ := strings.Cut(string(dec), ":")
	header, _ := json.Marshal(map[string]string{"username": user, "password": pw, "serveraddress": registry})
	return []string{pw, enc, base64.URLEncoding.EncodeToString(header)}
}

// TestSwarmDaemon is a Swarm site as an admin runs it, through the daemon
// process, with every default (no container.token, the default command and
// mounts): the course image is built, pushed to a registry with TLS and
// htpasswd with credentials from a file, and run as services that pull
// with them; a student reaches their server through the front door, it is
// stopped once idle, comes back with their files; a roll-out replaces the
// idle student's server and keeps the busy one. A plan asks the engine one
// service list, one task list and one node list, and nothing per student;
// no output carries the registry password.
func TestSwarmDaemon(t *testing.T) {
	cli := requireDocker(t)
	requireImage(t, cli, "nbhtest-jupyter2:latest", "bash testimages/jupyter/build.sh --gen 2")
	registry, authFile := requireAuthSwarm(t, cli)
	prefix := "nbhtest-sw-" + fjtest.Suffix()
	cleanupEngine(t, cli, prefix)
	cleanupServices(t, cli, prefix)
	tm := newTimings(t)
	ctx := t.Context()

	py := prefix + "-py"
	git := newGitServer(t)
	pyRepo := git.newRepo(t, "py", map[string]string{
		"docker-image/nbhosting.Dockerfile": "FROM nbhtest-jupyter2:latest\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY marker.txt /etc/nbh-marker.txt\n",
		"docker-image/marker.txt":           "v1\n",
		"notebooks/intro.md":                "# Intro\n",
	})
	cfgRepo := git.newRepo(t, "config", map[string]string{"courses.yaml": fmt.Sprintf(`version: 1
engine:
  kind: swarm
  registry: %s
  registry-auth-file: %s
defaults:
  idle: 1m               # the shortest allowed
build: {keep: 1}
schedules:
  pull: "@every 1h"        # pushes come by webhook
  reconcile: "@every 1h"   # passes come when the test asks: it counts engine calls
courses:
  # On the manager: the registry is on its loopback, where a worker node
  # (CI joins one) could not pull from.
  %s: {repo: %s, container: {constraints: [node.role==manager]}}
`, registry, authFile, py, pyRepo.url)})
	proxy := newEngineProxy(t, prefix)
	d := newDaemon(t, cfgRepo.url, proxy.host())
	door := freeAddr(t)
	d.runFlags = []string{"--listen", d.addr, "--api-token-file", d.tokenFile(),
		"--webhook-secret-file", filepath.Join(filepath.Dir(d.root), "secret"), "--grace", "2s", "--proxy-listen", door}
	d.start()
	// Ready means the first pass ended, and the first pass builds the
	// course image on the Jupyter base and pushes it: minutes on a
	// busy 2-core machine.
	d.waitReady(12 * time.Minute)
	testenv.Eventually(t, 15*time.Minute, "the course image built and pushed", func() (bool, string) {
		st := d.mustStatus()
		if st.ConfigError != "" {
			t.Fatalf("config rejected: %s", st.ConfigError)
		}
		im := imageView(st, py)
		if im.Failed != nil {
			t.Fatalf("build failed: %s", im.Failed.Error)
		}
		return im.BuildKey != "", fmt.Sprintf("%+v", im)
	})
	tm.phase("build, push to the registry with TLS and htpasswd")

	// pass runs one container pass and waits for its end.
	pass := func() {
		t.Helper()
		before := d.mustStatus().LastPass
		d.sync("reconcile")
		testenv.Eventually(t, 3*time.Minute, "a container pass", func() (bool, string) {
			return d.mustStatus().LastPass.After(before), ""
		})
	}
	uid := 1000
	alice := d.mustSpawn(py, "alice", &uid)
	if alice.ID == "" || alice.Host == "" || alice.Token == "" || alice.LaunchURL == "" || alice.State != "created" {
		t.Fatalf("spawn alice: %+v; want id, host, token and launch URL", alice)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, alice.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := svc.Spec.TaskTemplate.ContainerSpec.Image
	if !strings.HasPrefix(v1, registry+"/") || !strings.Contains(v1, "@sha256:") {
		t.Errorf("service image %s, want %s/…@sha256:…", v1, registry)
	}
	tm.phase("spawn alice: a service pulled with the file's credentials")

	// Through the front door: the launch URL lets the browser in; the
	// door adds the token Jupyter wants.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: time.Minute}
	base := "http://" + door + "/u/" + py + "/alice/"
	launch := func(res api.SpawnResult) {
		t.Helper()
		resp, err := browser.Get(res.LaunchURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("launch: %s", resp.Status)
		}
	}
	front := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, rd)
		req.Header.Set("Origin", "http://"+door) // the browser's, on a page of the front door
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	launch(alice)
	if code, b := front(http.MethodPut, "api/contents/notes.txt", map[string]string{"type": "file", "format": "text", "content": "alice's notes\n"}); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("save a file through the front door: %d %s", code, b)
	}
	if b, err := os.ReadFile(filepath.Join(d.root, "students", "alice", py, "notes.txt")); err != nil || string(b) != "alice's notes\n" {
		t.Errorf("alice's file on the host: %q %v", b, err)
	}
	tm.phase("through the front door: a file saved")

	// Idle (no kernel, no traffic) for a minute: stopped, not removed.
	testenv.Eventually(t, 5*time.Minute, "alice's idle server stopped", func() (bool, string) {
		pass()
		s, _, err := cli.ServiceInspectWithRaw(ctx, alice.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatalf("alice's service: %v", err)
		}
		return replicasOf(s) == 0, "still running"
	})
	tm.phase("idle stop (service scaled to 0)")

	alice = d.mustSpawn(py, "alice", &uid)
	if alice.State != "started" {
		t.Errorf("respawn: %+v, want started", alice)
	}
	launch(alice)
	var f struct{ Content string }
	if code, b := front(http.MethodGet, "api/contents/notes.txt?type=file&format=text", nil); code != http.StatusOK || json.Unmarshal(b, &f) != nil || f.Content != "alice's notes\n" {
		t.Fatalf("alice's file after the respawn: %d %s", code, b)
	}
	tm.phase("respawn: the files are back")

	// Bob works: a kernel busy on a long cell.
	bob := d.mustSpawn(py, "bob", &uid)
	bs := dialStudent(t, bob.URL, bob.Token)
	kid, err := settledKernel(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if err := startBusy(ctx, bs, kid); err != nil {
		t.Fatal(err)
	}
	tm.phase("bob busy")

	// A plan asks the engine the same three lists however many students,
	// and nothing per student (a stats call per service used to 404).
	mark := len(proxy.pathsSince(0))
	var plan api.Plan
	if err := d.call(ctx, http.MethodGet, "/api/plan", nil, &plan); err != nil {
		t.Fatal(err)
	}
	calls := proxy.pathsSince(mark)
	count := map[string]int{}
	ids := []string{alice.ID, bob.ID}
	for _, c := range calls {
		for _, kind := range []string{"/services", "/tasks", "/nodes"} {
			if strings.HasPrefix(c, "GET ") && strings.HasSuffix(c, kind) {
				count[kind]++
			}
		}
		for _, id := range ids {
			if strings.Contains(c, id) || strings.Contains(c, "/stats") {
				t.Errorf("a plan made a call per student: %s", c)
			}
		}
	}
	if count["/services"] != 1 || count["/tasks"] != 1 || count["/nodes"] != 1 {
		t.Errorf("a plan's engine calls: %q; want one service list, one task list, one node list", calls)
	}
	t.Logf("a plan on Swarm with 2 students: %d engine calls: %q", len(calls), calls)

	// Roll-out: a new build; alice (idle) moves to it, bob (busy) is kept.
	pyRepo.Commit(t, map[string]string{"docker-image/marker.txt": "v2\n"}, "v2")
	d.hook(pyRepo.url)
	var v2 string
	testenv.Eventually(t, 15*time.Minute, "the new build served", func() (bool, string) {
		im := imageView(d.mustStatus(), py)
		if im.Failed != nil {
			t.Fatalf("rebuild failed: %s", im.Failed.Error)
		}
		ims, err := cli.ImageInspect(ctx, d.repo(py)+":latest")
		if err == nil {
			for _, rd := range ims.RepoDigests {
				if strings.HasPrefix(rd, registry+"/") && rd != v1 {
					v2 = rd
				}
			}
		}
		return v2 != "", fmt.Sprintf("%+v", im)
	})
	tm.phase("rebuild and push")
	testenv.Eventually(t, 5*time.Minute, "alice rolled onto the new build, bob kept", func() (bool, string) {
		pass()
		var p api.Plan
		if err := d.call(ctx, http.MethodGet, "/api/plan", nil, &p); err != nil {
			return false, err.Error()
		}
		kinds := map[string]string{}
		for _, a := range p.Actions {
			kinds[a.Student] = a.Kind + ": " + a.Reason
		}
		_, _, err := cli.ServiceInspectWithRaw(ctx, alice.ID, swarm.ServiceInspectOptions{})
		aliceGone := client.IsErrNotFound(err)
		return aliceGone && strings.HasPrefix(kinds["bob"], "report-stale"), fmt.Sprintf("alice's service gone: %v; plan %q", aliceGone, kinds)
	})
	if st, err := kernelState(ctx, bs, kid); err != nil || st != "busy" {
		t.Errorf("bob's kernel after the roll-out: %q %v; want busy, untouched", st, err)
	}
	alice = d.mustSpawn(py, "alice", &uid)
	s, _, err := cli.ServiceInspectWithRaw(ctx, alice.ID, swarm.ServiceInspectOptions{})
	if err != nil || alice.State != "created" || s.Spec.TaskTemplate.ContainerSpec.Image != v2 {
		t.Errorf("alice after the roll-out: %+v on %s, want created on %s (%v)", alice, s.Spec.TaskTemplate.ContainerSpec.Image, v2, err)
	}
	launch(alice)
	if code, b := front(http.MethodGet, "api/contents/notes.txt?type=file&format=text", nil); code != http.StatusOK || json.Unmarshal(b, &f) != nil || f.Content != "alice's notes\n" {
		t.Errorf("alice's file on the new build: %d %s", code, b)
	}
	tm.phase("roll-out: idle alice on the new build with her files, busy bob kept")

	// Nothing secret anywhere: the daemon's log, its documents, the
	// services as the engine shows them.
	var outputs []string
	for _, path := range []string{"/api/status", "/api/plan", "/api/history"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, d.url(path), nil)
		resp, err := d.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		outputs = append(outputs, path+": "+string(b))
	}
	for _, id := range []string{alice.ID, bob.ID} {
		_, raw, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, "service "+id+": "+string(raw))
	}
	for _, l := range d.Lines(0) {
		outputs = append(outputs, "log: "+l.Raw)
	}
	for _, secret := range secretsOf(t, authFile, registry) {
		for _, out := range outputs {
			if strings.Contains(out, secret) {
				t.Errorf("a registry secret in %.60s…", out)
			}
		}
	}
	tm.phase("no secret in any output")
}

func replicasOf(s swarm.Service) uint64 {
	if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		return *m.Replicas
	}
	return 0
}

// cleanupServices removes, when the test ends, every service whose name
// starts with prefix (registered after cleanupEngine, so it runs before
// it: an image a task uses cannot be removed).
func cleanupServices(t *testing.T, cli *client.Client, prefix string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		svcs, _ := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", prefix))})
		for _, s := range svcs {
			if strings.HasPrefix(s.Spec.Name, prefix) {
				_ = cli.ServiceRemove(ctx, s.ID)
			}
		}
	})
}
