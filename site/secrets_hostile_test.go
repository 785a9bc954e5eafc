package site_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/gitwatch/webhook"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/metrics"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
)

// syncLog is a concurrency-safe log sink.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// The secrets of a site — a course repo's token (password-file), a token
// in a repo URL, a wrong token, the notifier's URL, the webhook secret and
// the API token — appear in none of what the site shows: logs, status JSON,
// history records, /metrics, HTTP answers. The site pulls over a real git
// http-backend behind basic auth, with one course that authenticates, one
// whose URL carries a wrong token, one whose password file is wrong, and a
// notifier that cannot be reached (so its failure is logged); the server
// gets webhooks with bad and good signatures, huge and malformed bodies,
// and API calls with wrong tokens.
func TestHostileSecretsNeverShown(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs the git CLI for fixtures and git http-backend")
	}
	const (
		user        = "bot"
		goodToken   = "GOODTOKEN-7f3a9c"
		urlToken    = "URLTOKEN-55e1b2"
		wrongToken  = "WRONGTOKEN-0c9d8e"
		notifyPath  = "NOTIFYSECRET-a1b2c3"
		hookSecret  = "HOOKSECRET-d4e5f6"
		apiToken    = "APITOKEN-778899"
		wrongAPITok = "APITOKEN-778899-but-wrong"
	)
	secrets := []string{goodToken, urlToken, wrongToken, notifyPath, hookSecret, apiToken}

	dir := t.TempDir()
	repos := filepath.Join(dir, "repos")
	for _, name := range []string{"a", "b", "c"} {
		work := filepath.Join(dir, "work-"+name)
		testenv.Git(t, dir, "init", "-q", "--bare", "-b", "main", filepath.Join(repos, name+".git"))
		testenv.Git(t, dir, "init", "-q", "-b", "main", work)
		if err := os.WriteFile(filepath.Join(work, "README.md"), []byte("# "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		testenv.Git(t, work, "add", "-A")
		testenv.Git(t, work, "commit", "-q", "-m", "init")
		testenv.Git(t, work, "push", "-q", filepath.Join(repos, name+".git"), "main")
	}
	execPath := testenv.Git(t, dir, "--exec-path")
	gitCGI := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"),
		Env: append([]string{"GIT_PROJECT_ROOT=" + repos, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...)}
	gitSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != goodToken {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		gitCGI.ServeHTTP(w, r)
	}))
	t.Cleanup(gitSrv.Close)

	// Secrets in files, as courses.yaml wants them.
	write := func(name, content string) string {
		p := filepath.Join(dir, "secrets", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, wrong := write("good", goodToken), write("wrong", wrongToken)
	notifyURL := write("notify", "http://127.0.0.1:1/hooks/"+notifyPath)
	host := strings.TrimPrefix(gitSrv.URL, "http://")
	config := filepath.Join(dir, "config")
	if err := os.MkdirAll(config, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`version: 1
notify:
  - {kind: json, url-file: %s}
courses:
  a:
    repo: %s/a.git
    credentials: {username: %s, password-file: %s}
  b:
    repo: %s/b.git
  c:
    repo: %s/c.git
    credentials: {username: %s, password-file: %s}
`, notifyURL, gitSrv.URL, user, good, gitSrv.URL, gitSrv.URL, user, wrong)
	if err := os.WriteFile(filepath.Join(config, "courses.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, config, "init", "-q", "-b", "main")
	testenv.Git(t, config, "add", "-A")
	testenv.Git(t, config, "commit", "-q", "-m", "config")

	logs := &syncLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	root := filepath.Join(dir, "root")
	hist, err := history.Open(rootdir.History(root), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hist.Close() })
	met := metrics.New()
	ie, ce := requireEngines(t)
	st, err := site.New(site.Options{Config: config, Root: root, Log: log, History: hist, Metrics: met,
		ImageEngine: ie, ContainerEngine: ce})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rep, err := st.Pull(ctx)
	t.Logf("pull: %v", err)
	var okA bool
	for _, c := range rep.Courses {
		if c.Course == "a" && c.Error == "" && !c.Commit.IsZero() {
			okA = true
		}
	}
	if !okA || err == nil {
		t.Fatalf("want course a pulled with its token and b, c failing; got %+v, %v", rep.Courses, err)
	}
	pullJSON, _ := json.Marshal(rep)
	errText := err.Error()

	// A second revision puts a token in repo URLs, as a password and as
	// the user name (https://TOKEN@host/x.git): it is rejected, and the
	// rejection must not quote it.
	bad := yaml + fmt.Sprintf("  d:\n    repo: http://%s:%s@%s/a.git\n  e:\n    repo: http://%s@%s/a.git\n", user, urlToken, host, urlToken, host)
	if err := os.WriteFile(filepath.Join(config, "courses.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, config, "commit", "-q", "-am", "token in a URL")
	rep2, err := st.Pull(ctx)
	if rep2.Rejected == nil {
		t.Errorf("a config with a token in a repo URL was not rejected: %v", err)
	}
	pull2JSON, _ := json.Marshal(rep2)
	if err != nil {
		errText += "\n" + err.Error()
	}

	status, serr := st.Status(ctx)
	if serr != nil {
		t.Logf("status: %v", serr)
	}
	statusJSON, _ := json.Marshal(status)
	records, err := hist.Query(ctx, history.Query{})
	if err != nil {
		t.Fatal(err)
	}
	historyJSON, _ := json.Marshal(records)
	if len(records) == 0 {
		t.Errorf("no history records: the failures were not recorded")
	}

	// The daemon's HTTP face, with a webhook handler on gitwatch/webhook
	// and the site's Pushed, as the daemon's.
	var syncs []api.SyncRequest
	var mu sync.Mutex
	hooks := server.HookFunc(func(ctx context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error) {
		if provider != "github" && provider != "gitlab" && provider != "generic" {
			return api.SyncResult{}, fmt.Errorf("%s: %w", provider, server.ErrUnknownProvider)
		}
		p := webhook.Provider(provider)
		if err := webhook.VerifyFor(p, h, body, []byte(hookSecret)); err != nil {
			return api.SyncResult{}, err
		}
		push, err := webhook.Parse(p, h, body)
		if err != nil || !push.IsPush {
			return api.SyncResult{}, err
		}
		courses, ours := st.Pushed(ctx, push.Keys())
		if ours {
			mu.Lock()
			defer mu.Unlock()
			syncs = append(syncs, api.SyncRequest{Source: "hook:" + provider})
		}
		return api.SyncResult{Courses: courses}, nil
	})
	be := &backend{site: st, hist: hist, sync: func(req api.SyncRequest) {
		mu.Lock()
		defer mu.Unlock()
		syncs = append(syncs, req)
	}}
	srv, err := server.New(server.Config{Backend: be, Hooks: hooks, Metrics: met.Handler(), Token: apiToken, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	sign := func(body []byte) string {
		m := hmac.New(sha256.New, []byte(hookSecret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	push := func(repo string) []byte {
		b, _ := json.Marshal(map[string]any{"ref": "refs/heads/main", "after": "abc", "repository": map[string]string{"clone_url": repo}})
		return b
	}
	goodRepo := gitSrv.URL + "/a.git"
	var answers []string
	post := func(path string, body io.Reader, size int64, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+path, body)
		req.ContentLength = size
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answers = append(answers, string(b))
		return resp.StatusCode
	}
	nsyncs := func() int { mu.Lock(); defer mu.Unlock(); return len(syncs) }
	huge := bytes.Repeat([]byte("x"), server.DefaultMaxHookBody+1)
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		size   int64 // -1: chunked, no Content-Length
		hdr    map[string]string
		want   int
		synced bool
	}{
		{"no signature", "/hooks/github", push(goodRepo), 0, nil, 401, false},
		{"bad signature", "/hooks/github", push(goodRepo), 0, map[string]string{"X-Hub-Signature-256": sign([]byte("other"))}, 401, false},
		{"signature not hex", "/hooks/github", push(goodRepo), 0, map[string]string{"X-Hub-Signature-256": "sha256=zz" + hookSecret}, 401, false},
		{"wrong gitlab token", "/hooks/gitlab", push(goodRepo), 0, map[string]string{"X-Gitlab-Token": hookSecret + "x"}, 401, false},
		{"huge body", "/hooks/github", huge, 0, map[string]string{"X-Hub-Signature-256": sign(huge)}, 413, false},
		{"huge body, chunked", "/hooks/github", huge, -1, map[string]string{"X-Hub-Signature-256": sign(huge)}, 413, false},
		{"malformed JSON, signed", "/hooks/github", []byte(`{"ref": "refs/heads/main", "repository": `), 0, map[string]string{"X-Hub-Signature-256": sign([]byte(`{"ref": "refs/heads/main", "repository": `))}, 401, false},
		{"unknown repo, signed", "/hooks/github", push("https://evil.example.org/x.git"), 0, map[string]string{"X-Hub-Signature-256": sign(push("https://evil.example.org/x.git"))}, 202, false},
		{"unknown provider", "/hooks/../../etc/passwd", push(goodRepo), 0, nil, 404, false},
		{"good push", "/hooks/github", push(goodRepo), 0, map[string]string{"X-Hub-Signature-256": sign(push(goodRepo)), "X-GitHub-Event": "push"}, 202, true},
		{"API, wrong token", "/api/sync", []byte(`{}`), 0, map[string]string{"Authorization": "Bearer " + wrongAPITok}, 401, false},
		{"API, token as basic auth", "/api/sync", []byte(`{}`), 0, map[string]string{"Authorization": "Basic " + apiToken}, 401, false},
	} {
		before := nsyncs()
		size := tc.size
		if size == 0 {
			size = int64(len(tc.body))
		}
		var body io.Reader = bytes.NewReader(tc.body)
		if size < 0 {
			body = io.MultiReader(bytes.NewReader(tc.body)) // hides the length: chunked
		}
		if got := post(tc.path, body, size, tc.hdr); got != tc.want && !(tc.path == "/hooks/../../etc/passwd" && got >= 400 && got != 401 && got < 500) {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
		if synced := nsyncs() > before; synced != tc.synced {
			t.Errorf("%s: synced %v, want %v", tc.name, synced, tc.synced)
		}
	}

	metricsText := get(t, ts.URL+"/metrics")
	apiStatus := get(t, ts.URL+"/api/status")
	apiHistory := get(t, ts.URL+"/api/history")
	dashboard := get(t, ts.URL+"/")
	// The notifier's failure is logged asynchronously, maybe: give it a
	// moment to land before reading the log.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "notif") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for what, text := range map[string]string{
		"log": logs.String(), "pull report": string(pullJSON), "rejected pull": string(pull2JSON), "pull error": errText, "status JSON": string(statusJSON),
		"history records": string(historyJSON), "/metrics": metricsText, "/api/status": apiStatus,
		"/api/history": apiHistory, "dashboard": dashboard, "HTTP answers": strings.Join(answers, "\n"),
	} {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("secret %s appears in the %s: …%s…", s, what, text[max(0, i-120):min(len(text), i+60)])
			}
		}
	}
	if !strings.Contains(logs.String(), "b.git") || !strings.Contains(logs.String(), "c.git") {
		t.Logf("log:\n%s", logs.String())
		t.Errorf("the failing remotes are not in the log: the search proves little")
	}
	if os.Getenv("NBH_SHOW_LOG") != "" {
		t.Logf("log:\n%s", logs.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// backend maps the server's views onto the site, as the daemon does, for
// what this test reads; Sync records the request.
type backend struct {
	site *site.Site
	hist *history.Store
	sync func(api.SyncRequest)
}

var _ server.Backend = (*backend)(nil)

func (b *backend) Ready() error                                   { return nil }
func (b *backend) Status(ctx context.Context) (api.Status, error) { return b.site.Status(ctx) }
func (b *backend) History(ctx context.Context, q history.Query) ([]history.Record, error) {
	return b.hist.Query(ctx, q)
}
func (b *backend) Plan(context.Context) (api.Plan, error) {
	return api.Plan{}, errors.New("not in this test")
}
func (b *backend) Spawn(context.Context, api.SpawnRequest) (api.SpawnResult, error) {
	return api.SpawnResult{}, errors.New("not in this test")
}
func (b *backend) Sync(_ context.Context, req api.SyncRequest) (api.SyncResult, error) {
	b.sync(req)
	return api.SyncResult{Courses: []string{}}, nil
}
func (b *backend) ConfirmPrune(context.Context, string) error { return errors.New("not in this test") }
func (b *backend) Reset(context.Context, api.ResetRequest) (api.ResetResult, error) {
	return api.ResetResult{}, errors.New("not in this test")
}
func (b *backend) Share(context.Context, api.ShareRequest) (api.ShareResult, error) {
	return api.ShareResult{}, errors.New("not in this test")
}

// requireEngines returns the real engines; the test fails without one when
// NBH_REQUIRE_DOCKER=1, and is skipped otherwise.
func requireEngines(t *testing.T) (images.Engine, containers.Engine) {
	t.Helper()
	ie, err := images.NewDockerEngine()
	var ce *containers.Docker
	if err == nil {
		ce, err = containers.DialDocker()
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), testenv.EngineTimeout)
		defer cancel()
		_, err = ce.List(ctx)
	}
	if err != nil {
		if os.Getenv("NBH_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker engine required (NBH_REQUIRE_DOCKER=1): %v", err)
		}
		t.Skipf("no docker engine: %v", err)
	}
	t.Cleanup(func() { ce.Close() })
	return ie, ce
}
