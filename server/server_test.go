package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/metrics"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/server/servertest"
)

const token = "s3cr3t-token"

// calls records what the fake backend was asked.
type calls struct {
	mu    sync.Mutex
	syncs []api.SyncRequest
	query history.Query
	hooks int
}

func newServer(t *testing.T, be *servertest.Backend, hooks server.HookHandler) *httptest.Server {
	t.Helper()
	m := metrics.New()
	m.CountAction("stop", "flotpython")
	s, err := server.New(server.Config{Backend: be, Hooks: hooks, Metrics: m.Handler(), Token: token, MaxHookBody: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func fakeBackend(c *calls) *servertest.Backend {
	return &servertest.Backend{
		ReadyFunc:  func() error { return nil },
		StatusFunc: func(context.Context) (api.Status, error) { return servertest.SampleStatus(time.Now()), nil },
		HistoryFunc: func(_ context.Context, q history.Query) ([]history.Record, error) {
			c.mu.Lock()
			c.query = q
			c.mu.Unlock()
			return []history.Record{{ID: 2, Kind: history.KindBuild, Image: "x"}}, nil
		},
		PlanFunc: func(context.Context) (api.Plan, error) {
			return api.Plan{Actions: []api.PlanAction{{Kind: "remove", Container: "flotpython-x-alice"}}}, nil
		},
		SpawnFunc: func(_ context.Context, req api.SpawnRequest) (api.SpawnResult, error) {
			switch req.Course {
			case "nope":
				return api.SpawnResult{}, fmt.Errorf("spawn: course %q: %w", req.Course, server.ErrNotFound)
			case "old":
				return api.SpawnResult{}, fmt.Errorf("spawn: course old is archived: %w", server.ErrConflict)
			case "slow":
				return api.SpawnResult{}, fmt.Errorf("spawn: wait for server: %w", context.DeadlineExceeded)
			}
			return api.SpawnResult{Name: req.Course + "-x-" + req.Student, State: "created", Port: 32001, URL: "/32001/"}, nil
		},
		SyncFunc: func(_ context.Context, req api.SyncRequest) (api.SyncResult, error) {
			c.mu.Lock()
			c.syncs = append(c.syncs, req)
			c.mu.Unlock()
			if req.Course == "nope" {
				return api.SyncResult{}, fmt.Errorf("sync %s: %w", req.Course, server.ErrNotFound)
			}
			if req.Course != "" {
				return api.SyncResult{Courses: []string{req.Course}}, nil
			}
			return api.SyncResult{Courses: []string{"flotpython", "ds-handbook"}}, nil
		},
		ResetFunc: func(_ context.Context, req api.ResetRequest) (api.ResetResult, error) {
			if req.Path == "gone.ipynb" {
				return api.ResetResult{}, fmt.Errorf("reset %s: not a file of the course: %w", req.Path, server.ErrNotFound)
			}
			return api.ResetResult{Path: req.Path, Beside: "lesson (mine 2026-12-01 10-00-00).ipynb", Backup: "b1"}, nil
		},
		ShareFunc: func(_ context.Context, req api.ShareRequest) (api.ShareResult, error) {
			if req.Student == "busy" {
				return api.ShareResult{}, fmt.Errorf("share: %w", server.ErrConflict)
			}
			return api.ShareResult{Token: "tok", URL: "/share/tok", Size: 12}, nil
		},
		ConfirmPruneFunc: func(_ context.Context, rev string) error {
			if rev == "stale" {
				return fmt.Errorf("confirm prune: nothing held at %s: %w", rev, server.ErrConflict)
			}
			return nil
		},
	}
}

type req struct {
	method, path, body string
	auth               string
}

func do(t *testing.T, ts *httptest.Server, r req) (int, http.Header, string) {
	t.Helper()
	hr, err := http.NewRequestWithContext(t.Context(), r.method, ts.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.auth != "" {
		hr.Header.Set("Authorization", r.auth)
	}
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPI(t *testing.T) {
	c := &calls{}
	ts := newServer(t, fakeBackend(c), nil)
	bearer := "Bearer " + token
	tests := []struct {
		name     string
		r        req
		code     int
		contains string
	}{
		{"healthz", req{"GET", "/healthz", "", ""}, 200, `"ok"`},
		{"readyz", req{"GET", "/readyz", "", ""}, 200, `"ready"`},
		{"metrics", req{"GET", "/metrics", "", ""}, 200, `nbh_sync_actions_total{course="flotpython",kind="stop"} 1`},
		{"status", req{"GET", "/api/status", "", ""}, 200, `"build_key": "sha256:9e1c`},
		{"plan", req{"GET", "/api/plan", "", ""}, 200, `"container": "flotpython-x-alice"`},
		{"history", req{"GET", "/api/history?kind=build,pull&course=a&limit=5&since=1h&log=1", "", ""}, 200, `"records"`},
		{"history bad kind", req{"GET", "/api/history?kind=nap", "", ""}, 400, `"error": "kind \"nap\"`},
		{"history bad limit", req{"GET", "/api/history?limit=-1", "", ""}, 400, `limit`},
		{"history bad since", req{"GET", "/api/history?since=yesterday", "", ""}, 400, `since`},
		{"spawn without token", req{"POST", "/api/spawn", `{"course":"a","student":"b"}`, ""}, 401, `"error"`},
		{"spawn wrong token", req{"POST", "/api/spawn", `{"course":"a","student":"b"}`, "Bearer nope"}, 401, `bearer token`},
		{"spawn token prefix only", req{"POST", "/api/spawn", `{"course":"a","student":"b"}`, "Bearer " + token[:4]}, 401, `bearer token`},
		{"spawn basic auth", req{"POST", "/api/spawn", `{}`, "Basic " + token}, 401, `bearer token`},
		{"spawn ok", req{"POST", "/api/spawn", `{"course":"flotpython","student":"alice","uid":1001}`, bearer}, 200, `"name": "flotpython-x-alice"`},
		{"spawn lowercase scheme", req{"POST", "/api/spawn", `{"course":"a","student":"b"}`, "bearer " + token}, 200, `"state": "created"`},
		{"spawn unknown course", req{"POST", "/api/spawn", `{"course":"nope","student":"b"}`, bearer}, 404, `course \"nope\": not found`},
		{"spawn archived", req{"POST", "/api/spawn", `{"course":"old","student":"b"}`, bearer}, 409, `archived`},
		{"spawn timeout", req{"POST", "/api/spawn", `{"course":"slow","student":"b"}`, bearer}, 504, `deadline`},
		{"spawn missing student", req{"POST", "/api/spawn", `{"course":"a"}`, bearer}, 400, `required`},
		{"reset without token", req{"POST", "/api/reset", `{"course":"a","student":"b","path":"lesson.ipynb"}`, ""}, 401, `"error"`},
		{"reset ok", req{"POST", "/api/reset", `{"course":"a","student":"b","path":"lesson.ipynb"}`, bearer}, 200, `"beside": "lesson (mine`},
		{"reset not in the course", req{"POST", "/api/reset", `{"course":"a","student":"b","path":"gone.ipynb"}`, bearer}, 404, `not a file of the course`},
		{"reset without path", req{"POST", "/api/reset", `{"course":"a","student":"b"}`, bearer}, 400, `required`},
		{"reset path key in another case", req{"POST", "/api/reset", `{"course":"a","student":"b","Path":"x"}`, bearer}, 400, `bad JSON body`},
		{"share without token", req{"POST", "/api/share", `{"course":"a","student":"b","path":"n.ipynb"}`, ""}, 401, `"error"`},
		{"share ok", req{"POST", "/api/share", `{"course":"a","student":"b","path":"n.ipynb"}`, bearer}, 200, `"url": "/share/tok"`},
		{"share conflict", req{"POST", "/api/share", `{"course":"a","student":"busy","path":"n.ipynb"}`, bearer}, 409, `conflict`},
		{"share unknown key", req{"POST", "/api/share", `{"course":"a","student":"b","path":"n.ipynb","x":1}`, bearer}, 400, `bad JSON body`},
		{"spawn unknown field", req{"POST", "/api/spawn", `{"course":"a","student":"b","x":1}`, bearer}, 400, `unknown field`},
		{"spawn not JSON", req{"POST", "/api/spawn", `course=a`, bearer}, 400, `bad JSON`},
		{"spawn too large", req{"POST", "/api/spawn", `{"course":"` + strings.Repeat("a", 70<<10) + `"}`, bearer}, 413, `too large`},
		{"spawn GET", req{"GET", "/api/spawn", "", bearer}, 405, ``},
		{"sync all", req{"POST", "/api/sync", "", bearer}, 202, `"ds-handbook"`},
		{"sync course by query", req{"POST", "/api/sync?course=flotpython", "", bearer}, 202, `"flotpython"`},
		{"sync course by body", req{"POST", "/api/sync", `{"course":"ds-handbook","kinds":["rebuild"]}`, bearer}, 202, `"ds-handbook"`},
		{"sync unknown course", req{"POST", "/api/sync?course=nope", "", bearer}, 404, `not found`},
		{"sync repos refused", req{"POST", "/api/sync", `{"repos":["x"]}`, bearer}, 400, `unknown field \"repos\"`},
		{"sync without token", req{"POST", "/api/sync", "", ""}, 401, `bearer`},
		{"confirm prune", req{"POST", "/api/confirm-prune", `{"revision":"abc"}`, bearer}, 200, `confirmed`},
		{"confirm prune stale", req{"POST", "/api/confirm-prune", `{"revision":"stale"}`, bearer}, 409, `nothing held`},
		{"confirm prune without token", req{"POST", "/api/confirm-prune", "", ""}, 401, `bearer`},
		{"hooks disabled", req{"POST", "/hooks/github", "{}", ""}, 404, `not enabled`},
		{"unknown path", req{"GET", "/nope", "", ""}, 404, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, h, body := do(t, ts, tt.r)
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("%s %s = %d %s, want %d containing %q", tt.r.method, tt.r.path, code, body, tt.code, tt.contains)
			}
			if code == 401 && (h.Get("WWW-Authenticate") == "" || h.Get("Content-Type") != "application/json") {
				t.Errorf("401 headers = %v", h)
			}
		})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.query
	if len(q.Kinds) != 2 || q.Course != "a" || q.Limit != 5 || !q.WithLog || time.Since(q.Since) < 59*time.Minute {
		t.Errorf("history query = %+v", q)
	}
	for _, s := range c.syncs {
		if s.Source != "api" {
			t.Errorf("sync source = %q", s.Source)
		}
	}
	if len(c.syncs) != 4 || c.syncs[2].Kinds[0] != "rebuild" {
		t.Errorf("syncs = %+v", c.syncs)
	}
}

func TestStatusJSONShape(t *testing.T) {
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) { return api.Status{}, nil }
	ts := newServer(t, be, nil)
	_, _, body := do(t, ts, req{"GET", "/api/status", "", ""})
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"courses", "images", "builds", "actions", "errors"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("%s is %T, want an array even when empty", k, m[k])
		}
	}
}

func TestNotReady(t *testing.T) {
	be := fakeBackend(&calls{})
	be.ReadyFunc = func() error { return errors.New("waiting for the first pass") }
	ts := newServer(t, be, nil)
	code, _, body := do(t, ts, req{"GET", "/readyz", "", ""})
	if code != 503 || !strings.Contains(body, "first pass") {
		t.Errorf("readyz = %d %s", code, body)
	}
}

func TestNoTokenConfiguredRefusesMutations(t *testing.T) {
	s, err := server.New(server.Config{Backend: fakeBackend(&calls{})})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		if code, _, _ := do(t, ts, req{"POST", "/api/sync", "", auth}); code != 401 {
			t.Errorf("auth %q: %d, want 401", auth, code)
		}
	}
}

func TestHooks(t *testing.T) {
	c := &calls{}
	var pushes []string
	verify := server.HookFunc(func(_ context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.hooks++
		switch {
		case provider == "bitbucket":
			return api.SyncResult{}, fmt.Errorf("%w: %s", server.ErrUnknownProvider, provider)
		case h.Get("X-Hub-Signature-256") != "sha256=good":
			return api.SyncResult{}, errors.New("signature mismatch")
		case string(body) == `{"zen":"ping"}`:
			return api.SyncResult{}, nil
		case string(body) == `{"ref":`:
			return api.SyncResult{}, fmt.Errorf("%w: unreadable payload", server.ErrInvalid)
		}
		pushes = append(pushes, provider)
		return api.SyncResult{Courses: []string{"flotpython"}}, nil
	})
	ts := newServer(t, fakeBackend(c), verify)
	post := func(provider, sig, body string) (int, string) {
		r, _ := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/hooks/"+provider, strings.NewReader(body))
		if sig != "" {
			r.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, provider, sig, body string
		code                      int
		contains                  string
		verified, pushed          int // cumulative counts
	}{
		{"bad signature", "github", "sha256=bad", `{"ref":"refs/heads/main"}`, 401, "verification failed", 1, 0},
		{"missing signature", "github", "", `{}`, 401, "verification failed", 2, 0},
		{"too large", "github", "sha256=good", strings.Repeat("x", 2048), 413, "larger than 1024", 2, 0},
		{"unknown provider", "bitbucket", "sha256=good", `{}`, 404, "unknown webhook provider", 3, 0},
		{"ping", "github", "sha256=good", `{"zen":"ping"}`, 202, `"courses": []`, 4, 0},
		{"signed but unreadable", "github", "sha256=good", `{"ref":`, 400, "unreadable payload", 5, 0},
		{"push", "github", "sha256=good", `{"ref":"refs/heads/master"}`, 202, `"flotpython"`, 6, 1},
	}
	for _, tt := range tests {
		code, body := post(tt.provider, tt.sig, tt.body)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Fatalf("%s: %d %s, want %d with %q", tt.name, code, body, tt.code, tt.contains)
		}
		c.mu.Lock()
		v, p, s := c.hooks, len(pushes), len(c.syncs)
		c.mu.Unlock()
		if v != tt.verified || p != tt.pushed {
			t.Fatalf("%s: verified %d pushed %d, want %d %d", tt.name, v, p, tt.verified, tt.pushed)
		}
		if s != 0 {
			t.Fatalf("%s: a webhook went through Backend.Sync: the hook handler asks for its pass itself", tt.name)
		}
	}
}

func TestDashboardHTML(t *testing.T) {
	ts := newServer(t, fakeBackend(&calls{}), nil)
	code, h, body := do(t, ts, req{"GET", "/", "", ""})
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("dashboard = %d %v", code, h)
	}
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'nonce-") {
		t.Errorf("CSP = %q", csp)
	}
	for _, want := range []string{
		`<meta name="viewport"`, `data-course="flotpython"`, `data-course="ds-handbook"`,
		`style="width: 75%"`, `style="width: 0%"`, `3/4 on the current image`,
		`a1b2c3d4e5`, `sha256:9e1c`, `No matching distribution found for numpyy`,
		`&lt;script&gt;alert(&#39;not run&#39;)&lt;/script&gt;`, `idle 31m ≥ 30m`, `connection refused`,
		`<details class="build">`,
		// Which image is built on which, and a failed build's stage and log tail.
		`on nbhosting/scipy-notebook`, `build failed`, `numpyy (tail)`, `image failed`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
	// A roll-out bar only where there are containers: ds-handbook has none.
	if n := strings.Count(body, `role="progressbar"`); n != 2 {
		t.Errorf("%d roll-out bars, want 2 (the courses with containers)", n)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://cdn") || strings.Contains(body, `src="http`) {
		t.Error("dashboard refers to an outside asset")
	}
	if strings.Count(body, "<script") != 1 {
		t.Errorf("want exactly the one refresh script, found %d", strings.Count(body, "<script"))
	}
}

func TestDashboardBackendError(t *testing.T) {
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) { return api.Status{}, errors.New("engine down") }
	ts := newServer(t, be, nil)
	code, _, body := do(t, ts, req{"GET", "/", "", ""})
	if code != 503 || !strings.Contains(body, "status unavailable: engine down") {
		t.Errorf("dashboard = %d, %s", code, body)
	}
}

func TestServeAndShutdown(t *testing.T) {
	s, err := server.New(server.Config{Backend: fakeBackend(&calls{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("  abc\n"), 0o600)
	os.WriteFile(empty, []byte("\n"), 0o600)
	if tok, err := server.LoadToken(good); err != nil || tok != "abc" {
		t.Errorf("LoadToken = %q, %v", tok, err)
	}
	for _, p := range []string{empty, filepath.Join(dir, "missing")} {
		if _, err := server.LoadToken(p); err == nil {
			t.Errorf("LoadToken(%s) succeeded", p)
		}
	}
}

func TestNewNeedsBackend(t *testing.T) {
	if _, err := server.New(server.Config{}); err == nil {
		t.Error("New without backend succeeded")
	}
}

func BenchmarkDashboard(b *testing.B) {
	st := servertest.SampleStatus(time.Now())
	be := &servertest.Backend{StatusFunc: func(context.Context) (api.Status, error) { return st, nil }}
	s, err := server.New(server.Config{Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for b.Loop() {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("GET", "/", nil))
		if rr.Code != 200 {
			b.Fatal(rr.Code)
		}
	}
}
