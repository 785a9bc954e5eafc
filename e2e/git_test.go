//go:build e2e

package e2e

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
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
	*testenv.Repo
	name, url string
}

// newRepo makes repo name.git on the server, with a first commit of files.
func (g *gitServer) newRepo(t *testing.T, name string, files map[string]string) *repo {
	t.Helper()
	r := &repo{Repo: testenv.NewRepoAt(t, filepath.Join(g.dir, name+".git"), filepath.Join(t.TempDir(), name)), name: name + ".git"}
	r.url = g.srv.URL + "/" + r.name
	r.Commit(t, files, "first")
	return r
}
