package gitwatch

import (
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func runGit(t testing.TB, dir string, args ...string) string { return testenv.Git(t, dir, args...) }

// fixture is a bare repo (the remote) and a work tree that pushes to it.
type fixture struct {
	bare, work string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{bare: filepath.Join(dir, "remote.git"), work: filepath.Join(dir, "work")}
	runGit(t, dir, "init", "-q", "--bare", "-b", "main", f.bare)
	runGit(t, dir, "init", "-q", "-b", "main", f.work)
	runGit(t, f.work, "remote", "add", "origin", f.bare)
	return f
}

// commit writes files (an empty content removes the file), commits them and
// pushes the current branch; it returns the new commit.
func (f *fixture) commit(t testing.TB, files map[string]string, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(f.work, name)
		if content == "" {
			runGit(t, f.work, "rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		runGit(t, f.work, "add", name)
	}
	runGit(t, f.work, "commit", "-q", "-m", msg)
	runGit(t, f.work, "push", "-q", "-f", "origin", "HEAD")
	return runGit(t, f.work, "rev-parse", "HEAD")
}

func (f *fixture) url() string { return "file://" + f.bare }

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// httpRemote serves the bare repos under dir with the real git
// http-backend, behind basic auth when user is not empty.
func httpRemote(t testing.TB, dir, user, password string) *httptest.Server {
	t.Helper()
	execPath := runGit(t, dir, "--exec-path")
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  append([]string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}
