//go:build e2e

package e2e

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// remoteMode is how the git server answers for one repo.
type remoteMode int

const (
	serve remoteMode = iota // git http-backend
	hang                    // accept, read the request, never answer
	fail                    // HTTP 500
)

// gitServer serves the bare repos under dir over HTTP with the real git
// http-backend (as a forge would), each repo switchable to hang or fail.
type gitServer struct {
	dir  string
	srv  *httptest.Server
	stop chan struct{}

	mu    sync.Mutex
	modes map[string]remoteMode
	hits  map[string]int
}

func newGitServer(t *testing.T) *gitServer {
	t.Helper()
	g := &gitServer{dir: t.TempDir(), stop: make(chan struct{}), modes: map[string]remoteMode{}, hits: map[string]int{}}
	execPath := testenv.Git(t, g.dir, "--exec-path")
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  append([]string{"GIT_PROJECT_ROOT=" + g.dir, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...),
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		g.mu.Lock()
		mode := g.modes[name]
		g.hits[name]++
		g.mu.Unlock()
		switch mode {
		case hang:
			select {
			case <-r.Context().Done():
			case <-g.stop:
			}
		case fail:
			http.Error(w, "forge on fire", http.StatusInternalServerError)
		default:
			backend.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() {
		close(g.stop)
		g.srv.Close()
	})
	return g
}

// set switches how repo name (e.g. "course.git") is served.
func (g *gitServer) set(name string, m remoteMode) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.modes[name] = m
}

// requests returns how many requests repo name received.
func (g *gitServer) requests(name string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.hits[name]
}

// repo is a bare repo served by a gitServer and a work tree that pushes
// to it.
type repo struct {
	name, bare, work, url string
}

// newRepo makes repo name.git on the server, with a first commit of files.
func (g *gitServer) newRepo(t *testing.T, name string, files map[string]string) *repo {
	t.Helper()
	r := &repo{name: name + ".git", bare: filepath.Join(g.dir, name+".git"), work: filepath.Join(t.TempDir(), name)}
	r.url = g.srv.URL + "/" + r.name
	testenv.Git(t, g.dir, "init", "-q", "--bare", "-b", "main", r.bare)
	testenv.Git(t, g.dir, "init", "-q", "-b", "main", r.work)
	testenv.Git(t, r.work, "remote", "add", "origin", r.bare)
	r.commit(t, files, "first")
	return r
}

// commit writes files (an empty content removes one), commits and pushes;
// it returns the commit.
func (r *repo) commit(t testing.TB, files map[string]string, msg string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if content == "" {
			testenv.Git(t, r.work, "rm", "-q", name)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		testenv.Git(t, r.work, "add", name)
	}
	testenv.Git(t, r.work, "commit", "-q", "--allow-empty", "-m", msg)
	testenv.Git(t, r.work, "push", "-q", "-f", "origin", "HEAD")
	return testenv.Git(t, r.work, "rev-parse", "HEAD")
}
