package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/site"
)

// Timing of the daemon under test.
const (
	testGrace   = time.Second
	testAbandon = 5 * time.Second // trigger.DefaultAbandon: run has no flag for it
)

// TestProcessDaemon runs `nbh-sync run` as a real process against real git
// repos (one served over HTTP by git http-backend, one local path, the
// config repo a local work tree) and the real engine, and checks what issue
// 6 asks to see: a signed webhook push starting a build (timed), a bad
// signature refused, fsnotify on a local repo, a cron schedule firing,
// /metrics, the API token, and SIGTERM in the middle of a build leaving a
// state that a restart completes.
func TestProcessDaemon(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	base := busyboxBase(t, cli) // its cleanup removes every build made on it

	dir := t.TempDir()
	srvDir := filepath.Join(dir, "srv")
	if err := os.Mkdir(srvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	remote := httpRemote(t, srvDir)
	suffix := randHex(4)
	webCourse, localCourse := testPrefix+"w-"+suffix, testPrefix+"l-"+suffix
	// This run's containers only: another run may share the engine.
	cleanupContainers(t, cli, webCourse)
	cleanupContainers(t, cli, localCourse)
	webURL := remote.URL + "/web.git"

	// The web course carries the image (docker-image/) that both courses
	// use; it is reachable over HTTP only, so that nothing but a pull pass
	// (a webhook, here) sees its commits.
	web := newWorkTree(t, filepath.Join(dir, "web"), filepath.Join(srvDir, "web.git"))
	dockerfile := "FROM " + base + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY data.txt /data.txt\n"
	web.commit(t, map[string]string{
		"docker-image/nbhosting.Dockerfile": dockerfile,
		"docker-image/data.txt":             "v1\n",
		"notebooks/a.ipynb":                 "{}",
	}, "v1")
	local := newWorkTree(t, filepath.Join(dir, "local"), "")
	local.commit(t, map[string]string{"notebooks/intro.ipynb": "{}"}, "first")
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	cfg.commit(t, map[string]string{"courses.yaml": fmt.Sprintf(`version: 1
schedules:
  pull: "@every 1h"      # only webhooks and fsnotify pull during the test
  reconcile: "@every 2s"
courses:
  %s:
    repo: %s
  %s:
    repo: %s
    image: %s
`, webCourse, webURL, localCourse, local.dir, webCourse)}, "site")

	root := filepath.Join(dir, "root")
	webRepo := imageref.Repository(site.SiteName(root), webCourse)
	token, secret := "tok-"+randHex(16), "sec-"+randHex(16)
	tokenFile, secretFile := filepath.Join(dir, "api-token"), filepath.Join(dir, "webhook-secret")
	for f, v := range map[string]string{tokenFile: token, secretFile: secret} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"run", "--config", cfg.dir, "--root", root, "--listen", "127.0.0.1:0",
		"--api-token-file", tokenFile, "--webhook-secret-file", secretFile, "--log-format", "json",
		"--grace", testGrace.String()}

	// --- start: the first pass builds the shared image and checks out both courses.
	p := startDaemon(t, args...)
	p.waitReadyz(10*time.Minute, "/readyz 200 (first pass done)")
	first := p.builds(webCourse)
	if len(first) != 1 || first[0].Result != "ok" {
		t.Fatalf("after the first pass, builds of %s: %+v", webCourse, first)
	}
	key1 := first[0].BuildKey
	checkServing(t, cli, webRepo, key1)
	for _, f := range []string{
		filepath.Join(root, "courses", webCourse, "notebooks", "a.ipynb"),
		filepath.Join(root, "courses", localCourse, "notebooks", "intro.ipynb"),
	} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not checked out: %v", err)
		}
	}

	// --- API token: mutating calls need it.
	if code, body := p.post("/api/sync", []byte(`{}`), nil); code != http.StatusUnauthorized {
		t.Errorf("POST /api/sync without token: %d %s, want 401", code, body)
	}
	if code, body := p.post("/api/sync", []byte(`{}`), map[string]string{"Authorization": "Bearer wrong"}); code != http.StatusUnauthorized {
		t.Errorf("POST /api/sync with a wrong token: %d %s, want 401", code, body)
	}
	m := p.Mark()
	if code, body := p.post("/api/sync", []byte(`{}`), map[string]string{"Authorization": "Bearer " + token}); code != http.StatusAccepted {
		t.Errorf("POST /api/sync with the token: %d %s, want 202", code, body)
	}
	p.WaitLog(m, 30*time.Second, "the pass asked by the API", func(l logLine) bool { return l.Msg == "pass" && hasReason(l, "api") })

	// --- cron: schedules.reconcile fires every 2s; passes counted in /metrics.
	before := p.reconcilePasses()
	cronStart := time.Now()
	testenv.WaitFor(t, 15*time.Second, "two cron reconcile passes in /metrics", func() bool { return p.reconcilePasses() >= before+2 })
	t.Logf("cron: 2 reconcile passes in %s", time.Since(cronStart).Round(time.Millisecond))

	// --- webhook: a bad signature triggers nothing.
	v2 := web.commit(t, map[string]string{"docker-image/data.txt": "v2\n"}, "v2: new image input")
	payload := fmt.Appendf(nil, `{"ref":"refs/heads/main","after":%q,"repository":{"clone_url":%q,"html_url":%q}}`,
		v2, webURL, strings.TrimSuffix(webURL, ".git"))
	m = p.Mark()
	for name, h := range map[string]map[string]string{
		"bad signature": {"X-Hub-Signature-256": sign("not-the-secret", payload), "X-GitHub-Event": "push"},
		"no signature":  {"X-GitHub-Event": "push"},
	} {
		if code, body := p.post("/hooks/github", payload, h); code != http.StatusUnauthorized {
			t.Errorf("webhook with %s: %d %s, want 401", name, code, body)
		}
	}
	// Two reconcile passes later, still no pull, no build, no new commit.
	testenv.WaitFor(t, 15*time.Second, "two reconcile passes after the refused webhooks", func() bool {
		return p.Count(m, func(l logLine) bool { return l.Msg == "pass" && l.Str("kinds") == "reconcile" }) >= 2
	})
	if n := p.Count(m, func(l logLine) bool { return l.Msg == "pass" && strings.Contains(l.Str("kinds"), "pull") }); n != 0 {
		t.Errorf("%d pull passes after refused webhooks, want 0", n)
	}
	if got := p.builds(webCourse); len(got) != 1 {
		t.Errorf("builds after refused webhooks: %+v", got)
	}
	if c := p.courseCommit(webCourse); c == v2 {
		t.Errorf("course %s moved to %s after refused webhooks", webCourse, c)
	}

	// --- webhook: a good signature starts the build at once.
	m = p.Mark()
	posted := time.Now()
	code, body := p.post("/hooks/github", payload, map[string]string{"X-Hub-Signature-256": sign(secret, payload), "X-GitHub-Event": "push", "Content-Type": "application/json"})
	if code != http.StatusAccepted || !strings.Contains(body, webCourse) {
		t.Fatalf("signed webhook: %d %s, want 202 naming %s", code, body, webCourse)
	}
	passLine := p.WaitLog(m, 30*time.Second, "the pass of the webhook", func(l logLine) bool { return l.Msg == "pass" && hasReason(l, "hook:github") })
	var b2 history.Record
	testenv.WaitFor(t, 90*time.Second, "the build of the pushed commit", func() bool {
		got := p.builds(webCourse)
		if len(got) > 1 && got[0].BuildKey != key1 {
			b2 = got[0]
			return true
		}
		return false
	})
	if b2.Result != "ok" || !strings.Contains(b2.Message, v2[:12]) {
		t.Fatalf("build after the webhook: %+v, want ok from %s", b2, v2[:12])
	}
	buildStart := b2.Time.Add(-b2.Duration)
	t.Logf("MEASURED webhook POST → pass start %s, → build start %s, → build done %s (build %s)",
		passLine.Time().Sub(posted).Round(time.Millisecond), buildStart.Sub(posted).Round(time.Millisecond),
		b2.Time.Sub(posted).Round(time.Millisecond), b2.Duration.Round(time.Millisecond))
	checkServing(t, cli, webRepo, b2.BuildKey)

	// --- /metrics in the Prometheus text format.
	fams := p.metrics()
	for _, name := range []string{"pass_duration_seconds", "passes_total", "build_duration_seconds", "builds_total", "last_successful_pass_timestamp_seconds"} {
		if _, ok := fams["nbh_sync_"+name]; !ok {
			t.Errorf("/metrics lacks nbh_sync_%s (has %v)", name, keys(fams))
		}
	}
	if n := sum(fams, "nbh_sync_builds_total", map[string]string{"image": webCourse, "result": "ok"}); n != 2 {
		t.Errorf("nbh_sync_builds_total{image=%q,result=\"ok\"} = %v, want 2", webCourse, n)
	}

	// --- fsnotify: a commit in the local-path repo is checked out at once.
	committed := time.Now()
	lc := local.commit(t, map[string]string{"notebooks/new.ipynb": `{"cells":[]}`}, "new notebook")
	newFile := filepath.Join(root, "courses", localCourse, "notebooks", "new.ipynb")
	testenv.WaitFor(t, 10*time.Second, "the local commit checked out under ROOT/courses", func() bool {
		_, err := os.Stat(newFile)
		return err == nil
	})
	seen := time.Now()
	p.WaitLog(0, 5*time.Second, "fsnotify's log line", func(l logLine) bool { return l.Msg == "local repo changed" && l.Str("path") == local.dir })
	fsPass := p.WaitLog(0, 5*time.Second, "the pass of fsnotify", func(l logLine) bool { return l.Msg == "pass" && hasReason(l, "fsnotify:"+local.dir) })
	p.WaitLog(0, 30*time.Second, "the end of the pass of fsnotify", func(l logLine) bool {
		return strings.HasPrefix(l.Msg, "pass finished") && l.Fields["pass"] == fsPass.Fields["pass"]
	})
	if c := p.courseCommit(localCourse); c != lc {
		t.Errorf("status of %s: commit %s, want %s", localCourse, c, lc)
	}
	t.Logf("MEASURED local commit → checked out %s", seen.Sub(committed).Round(time.Millisecond))
	if got := p.builds(webCourse); len(got) != 2 {
		t.Errorf("a notebook-only commit built: %+v", got[0])
	}

	// --- SIGTERM in the middle of a build.
	marker := testPrefix + "run-" + randHex(4)
	v3 := web.commit(t, map[string]string{
		"docker-image/nbhosting.Dockerfile": dockerfile + "RUN echo " + marker + " && sleep 8\n",
	}, "v3: a slow build")
	payload = fmt.Appendf(nil, `{"ref":"refs/heads/main","after":%q,"repository":{"clone_url":%q}}`, v3, webURL)
	if code, body := p.post("/hooks/github", payload, map[string]string{"X-Hub-Signature-256": sign(secret, payload), "X-GitHub-Event": "push"}); code != http.StatusAccepted {
		t.Fatalf("signed webhook: %d %s", code, body)
	}
	testenv.WaitFor(t, 60*time.Second, "the slow RUN step to run", func() bool { return len(runContainers(t, cli, marker)) > 0 })
	latestBefore := inspect(t, cli, webRepo+":latest").ID
	took, state := p.Terminate(testGrace + testAbandon + 3*time.Second)
	t.Logf("MEASURED SIGTERM mid-build → exit %s (grace %s + abandon %s), %v", took.Round(time.Millisecond), testGrace, testAbandon, state)
	if !state.Exited() || state.ExitCode() != 0 {
		t.Errorf("daemon did not exit by itself with status 0 (a graceful stop is not a failure): %v", state)
	}
	p.WaitLog(0, time.Second, "the graceful stop", func(l logLine) bool { return l.Msg == "grace period over, cancelling passes" })
	cut := p.WaitLog(0, time.Second, "the cancelled pass", func(l logLine) bool { return l.Msg == "pass finished with errors" })
	t.Logf("cancelled pass: %s", cut.Str("err"))

	// The state left: latest unmoved, the interrupted build recorded as
	// failed, no tag on anything that did not pass its smoke test, and the
	// engine cleans the build up.
	if id := inspect(t, cli, webRepo+":latest").ID; id != latestBefore {
		t.Errorf("%s:latest moved from %s to %s", webCourse, latestBefore, id)
	}
	hist, err := history.Open(rootdir.History(root), history.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("history after exit: %v", err)
	}
	recs, err := hist.Query(t.Context(), history.Query{Kinds: []history.Kind{history.KindBuild}, Image: webCourse})
	hist.Close()
	if err != nil || len(recs) != 3 || recs[0].Result != "failed" {
		t.Fatalf("build history after SIGTERM: %+v %v, want a failed third build", recs, err)
	}
	key3 := recs[0].BuildKey
	t.Logf("interrupted build: %s", recs[0].Message)
	checkNoHalfBuild(t, cli, webCourse, webRepo, key3)
	testenv.WaitFor(t, 30*time.Second, "the engine to remove the interrupted RUN container", func() bool { return len(runContainers(t, cli, marker)) == 0 })

	// --- restart: the startup pass completes the interrupted build.
	p2 := startDaemon(t, args...)
	var b3 history.Record
	testenv.WaitFor(t, 90*time.Second, "the interrupted build completed after restart", func() bool {
		got := p2.builds(webCourse)
		if len(got) > 0 && got[0].BuildKey == key3 && got[0].Result == "ok" {
			b3 = got[0]
			return true
		}
		return false
	})
	restartLog := p2.buildLog(webCourse, b3.ID)
	if !strings.Contains(restartLog, marker) {
		t.Errorf("the build after restart did not run the RUN step:\n%s", restartLog)
	}
	checkServing(t, cli, webRepo, key3)
	checkNoHalfBuild(t, cli, webCourse, webRepo, "")
	p2.waitReadyz(5*time.Minute, "/readyz after restart")
	took, state = p2.Terminate(testGrace + testAbandon + 3*time.Second)
	t.Logf("idle daemon: SIGTERM → exit %s, %v", took.Round(time.Millisecond), state)
	if state.ExitCode() != 0 {
		t.Errorf("idle daemon exited with %v after SIGTERM, want 0", state)
	}
}

// sign is GitHub's X-Hub-Signature-256 of body.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func hasReason(l logLine, reason string) bool {
	rs, _ := l.Fields["reasons"].([]any)
	return slices.Contains(rs, any(reason))
}

// builds returns the build records of image, newest first.
func (p *proc) builds(image string) []history.Record {
	p.t.Helper()
	var out struct{ Records []history.Record }
	if code := p.getJSON("/api/history?kind=build&image="+image, &out); code != http.StatusOK {
		p.t.Fatalf("GET /api/history: %d", code)
	}
	return out.Records
}

// buildLog returns the log of the build record id.
func (p *proc) buildLog(image string, id uint64) string {
	p.t.Helper()
	var out struct{ Records []history.Record }
	p.getJSON("/api/history?kind=build&log=1&image="+image, &out)
	for _, r := range out.Records {
		if r.ID == id {
			return r.Log
		}
	}
	return ""
}

// courseCommit is the commit /api/status shows for course.
func (p *proc) courseCommit(course string) string {
	p.t.Helper()
	var st struct {
		Courses []struct{ Name, Commit string }
	}
	if code := p.getJSON("/api/status", &st); code != http.StatusOK {
		p.t.Fatalf("GET /api/status: %d", code)
	}
	for _, c := range st.Courses {
		if c.Name == course {
			return c.Commit
		}
	}
	return ""
}

// sample is one series of a metric family: its labels and its value (the
// sample count of a histogram).
type sample struct {
	labels map[string]string
	value  float64
}

// metrics reads /metrics with the Prometheus text parser.
func (p *proc) metrics() map[string][]sample {
	p.t.Helper()
	resp, err := http.Get(p.url("/metrics"))
	if err != nil {
		p.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		p.t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string][]sample{}
	for name, f := range fams {
		out[name] = []sample{}
		for _, m := range f.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetHistogram() != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// sum adds the values of the series of family whose labels include want.
func sum(fams map[string][]sample, family string, want map[string]string) float64 {
	var n float64
	for _, s := range fams[family] {
		match := true
		for k, v := range want {
			match = match && s.labels[k] == v
		}
		if match {
			n += s.value
		}
	}
	return n
}

// reconcilePasses is the number of reconcile-only passes /metrics counts.
func (p *proc) reconcilePasses() float64 {
	return sum(p.metrics(), "nbh_sync_pass_duration_seconds", map[string]string{"kinds": "reconcile"})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func inspect(t *testing.T, cli *client.Client, ref string) image.InspectResponse {
	t.Helper()
	insp, err := cli.ImageInspect(t.Context(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return insp
}

// checkServing checks that repo:latest is a passed build of key: a build
// is passed (smoke-tested) once it carries the tag of its own build key.
func checkServing(t *testing.T, cli *client.Client, repo, key string) {
	t.Helper()
	insp := inspect(t, cli, repo+":latest")
	if got := insp.Config.Labels[images.LabelBuildKey]; got != key || !images.Passed(repo, insp.RepoTags, key) {
		t.Errorf("%s:latest has key %.12s and tags %v, want a passed build of key %.12s", repo, got, insp.RepoTags, key)
	}
}

// checkNoHalfBuild checks that every build of name serving a tag other
// than its scratch tag passed its smoke test, and that no served tag is on
// the build key of an interrupted build.
func checkNoHalfBuild(t *testing.T, cli *client.Client, name, repo, interrupted string) {
	t.Helper()
	list, err := cli.ImageList(t.Context(), image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", images.LabelImage+"="+name))})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range list {
		key := im.Labels[images.LabelBuildKey]
		passed, served := images.Passed(repo, im.RepoTags, key), testenv.Served(repo, im.RepoTags)
		if served && !passed {
			t.Errorf("image %s is tagged %v but did not pass its smoke test", im.ID, im.RepoTags)
		}
		if interrupted != "" && key == interrupted && served {
			t.Errorf("image %s of the interrupted build is served (tags %v)", im.ID, im.RepoTags)
		}
	}
}

// runContainers returns the engine's containers whose command has marker
// (the build containers of a RUN step that echoes it).
func runContainers(t *testing.T, cli *client.Client, marker string) []string {
	t.Helper()
	cs, err := cli.ContainerList(t.Context(), container.ListOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		if strings.Contains(c.Command, marker) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
