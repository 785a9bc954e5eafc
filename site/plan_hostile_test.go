package site_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
)

// gitServer serves the bare repos under dir with the real git
// http-backend behind basic auth (user, password), counting requests and
// answering each after delay (a remote far away).
type gitServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newGitServer(t *testing.T, dir, user, password string, delay time.Duration) *gitServer {
	t.Helper()
	execPath := testenv.Git(t, dir, "--exec-path")
	backend := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"),
		Env: append([]string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...)}
	gs := &gitServer{}
	gs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gs.requests.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		select {
		case <-time.After(delay): // the remote's latency, not a wait for a condition
		case <-r.Context().Done():
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(gs.Close)
	return gs
}

// bareRepo makes dir/name.git holding files in one commit.
func bareRepo(t *testing.T, dir, name string, files map[string]string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), name)
	testenv.Git(t, dir, "init", "-q", "--bare", "-b", "main", filepath.Join(dir, name+".git"))
	testenv.Git(t, dir, "init", "-q", "-b", "main", work)
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(work, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, work, "add", "-A")
	testenv.Git(t, work, "commit", "-q", "-m", "init")
	testenv.Git(t, work, "push", "-q", filepath.Join(dir, name+".git"), "main")
}

// hostileSite is a site whose config repo and course repo are served over
// http with basic auth; the config repo's password is in a file.
func hostileSite(t *testing.T, delay time.Duration) (*site.Site, *gitServer, *syncLog, string) {
	t.Helper()
	const user, password = "bot", "CONFIGPASSWORD-93ab1f"
	dir := t.TempDir()
	repos := filepath.Join(dir, "repos")
	if err := os.MkdirAll(repos, 0o755); err != nil {
		t.Fatal(err)
	}
	gs := newGitServer(t, repos, user, password, delay)
	pwFile := filepath.Join(dir, "config-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bareRepo(t, repos, "course", map[string]string{"README.md": "# course"})
	bareRepo(t, repos, "config", map[string]string{"courses.yaml": fmt.Sprintf(`version: 1
courses:
  nbhtest-plan:
    repo: %s/course.git
    credentials: {username: %s, password-file: %s}
`, gs.URL, user, pwFile)})
	logs := &syncLog{}
	ie, ce := requireEngines(t)
	st, err := site.New(site.Options{Config: gs.URL + "/config.git", Root: filepath.Join(dir, "root"),
		ConfigCredentials: &manifest.Credentials{Username: user, PasswordFile: pwFile},
		Log:               slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ImageEngine:       ie, ContainerEngine: ce})
	if err != nil {
		t.Fatal(err)
	}
	return st, gs, logs, password
}

// An unauthenticated caller can ask for plans at will: plans must cost the
// remotes nothing and never hold a pull back.
func TestPlanMakesNoNetworkCallAndHoldsNoPull(t *testing.T) {
	if testing.Short() {
		t.Skip("git http-backend and the engine")
	}
	st, gs, _, _ := hostileSite(t, 50*time.Millisecond)
	ctx := t.Context()
	if _, err := st.Pull(ctx); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	start := time.Now()
	if _, err := st.Pull(ctx); err != nil {
		t.Fatalf("second pull: %v", err)
	}
	alone := time.Since(start)
	before := gs.requests.Load()
	const plans = 20
	var wg sync.WaitGroup
	for range plans {
		wg.Go(func() {
			rep, err := st.Plan(ctx, site.PassOptions{})
			if err != nil || rep.Config.Commit == "" {
				t.Errorf("plan: %+v, %v", rep.Config, err)
			}
		})
	}
	wg.Wait()
	if n := gs.requests.Load() - before; n != 0 {
		t.Errorf("%d plans made %d requests to the remotes, want 0", plans, n)
	}

	// Plans asked for in a loop while a pull runs: the pull's requests are
	// its own (a listing per remote, no more), and it ends.
	stop := make(chan struct{})
	var planned atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = st.Plan(ctx, site.PassOptions{})
				planned.Add(1)
			}
		})
	}
	before = gs.requests.Load()
	start = time.Now()
	_, err := st.Pull(ctx)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("pull during plans: %v", err)
	}
	// Two remotes, nothing new: one ref listing each (a 401 challenge and
	// the authenticated retry).
	if n := gs.requests.Load() - before; n > 4 {
		t.Errorf("a pull during %d plans made %d requests, want ≤ 4: plans reach the network", planned.Load(), n)
	}
	t.Logf("a pull took %v alone, %v during %d plans", alone, took, planned.Load())
}

// The config repo's password comes from a file, never from the URL, and
// appears in no log line, state file or plan.
func TestConfigPasswordNeverShown(t *testing.T) {
	if testing.Short() {
		t.Skip("git http-backend and the engine")
	}
	st, gs, logs, password := hostileSite(t, 0)
	ctx := t.Context()
	rep, err := st.Pull(ctx)
	if err != nil || rep.ConfigCommit == "" {
		t.Fatalf("pull with --config-password-file: %+v, %v", rep, err)
	}
	plan, err := st.Plan(ctx, site.PassOptions{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	planJSON, _ := json.Marshal(plan)
	status, _ := st.Status(ctx)
	statusJSON, _ := json.Marshal(status)

	// A password in the URL is refused, without quoting it.
	withPassword := strings.Replace(gs.URL, "://", "://bot:"+password+"@", 1) + "/config.git"
	_, nerr := site.New(site.Options{Config: withPassword, Root: t.TempDir()})
	if nerr == nil || !strings.Contains(nerr.Error(), "--config-password-file") {
		t.Errorf("a password in --config: err = %v, want a refusal naming --config-password-file", nerr)
	}
	// So is the password given as the URL's user name (a token often is).
	withUser := strings.Replace(gs.URL, "://", "://"+password+"@", 1) + "/config.git"
	_, uerr := site.New(site.Options{Config: withUser, Root: t.TempDir()})
	if uerr == nil || !strings.Contains(uerr.Error(), "--config-password-file") {
		t.Errorf("a user name in --config: err = %v, want a refusal naming --config-password-file", uerr)
	}
	// The API's answers, of a plan and of a status, carry it neither.
	srv, err := server.New(server.Config{Backend: planBackend{&backend{site: st}}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	apiPlan, apiStatus := get(t, ts.URL+"/api/plan"), get(t, ts.URL+"/api/status")
	if !strings.Contains(apiPlan, `"commit"`) {
		t.Errorf("/api/plan: %s", apiPlan)
	}
	texts := map[string]string{"log": logs.String(), "plan": string(planJSON), "status": string(statusJSON),
		"/api/plan": apiPlan, "/api/status": apiStatus}
	if nerr != nil {
		texts["refusal"] = nerr.Error()
	}
	if uerr != nil {
		texts["refusal of a user name"] = uerr.Error()
	}
	err = filepath.WalkDir(filepath.Join(st.Root(), "state"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		texts[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(texts[filepath.Join(st.Root(), "state", "config.json")], "config.git") {
		t.Errorf("state/config.json does not name the config repo: the search proves little")
	}
	for what, text := range texts {
		if strings.Contains(text, password) {
			t.Errorf("the config repo's password appears in the %s", what)
		}
	}
}

// planBackend answers plans from the site, as the daemon does.
type planBackend struct{ *backend }

func (b planBackend) Plan(ctx context.Context) (api.Plan, error) {
	rep, err := b.site.Plan(ctx, site.PassOptions{})
	var nc *site.NoConfigError
	if errors.As(err, &nc) {
		return api.Plan{}, fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	return rep, nil
}
