package gitwatch

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/githash"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
)

// hangingRemote serves the bare repos under dir with git http-backend, but
// holds every fetch (upload-pack) until release is called: a remote whose
// ref listing answers and whose pack never comes (a long history on a slow
// link, a stuck server).
func hangingRemote(t *testing.T, dir string) (srv *httptest.Server, release func()) {
	t.Helper()
	execPath := runGit(t, dir, "--exec-path")
	backend := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"),
		Env: append([]string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}, testenv.GitEnv...)}
	held := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // before Close: Close waits for held requests
	return srv, release
}

// One remote whose fetch hangs never holds the others: the pass checks the
// good course out and moves on, the next pass does not wait for the fetch
// still running, and the one after that checks out what it brought.
func TestSyncMovesOnWithoutAHangingRemote(t *testing.T) {
	good := testenv.NewRepo(t)
	goodCommit := good.Commit(t, map[string]string{"nb.ipynb": "good"}, "good")
	slow := testenv.NewRepo(t)
	slowCommit := slow.Commit(t, map[string]string{"nb.ipynb": "slow"}, "slow")
	served := t.TempDir()
	runGit(t, served, "clone", "-q", "--bare", slow.Bare, filepath.Join(served, "slow.git"))
	srv, release := hangingRemote(t, served)
	slowURL := srv.URL + "/slow.git"

	cfg, _, err := manifest.Parse(manifest.FileName, fmt.Appendf(nil, "version: 1\ncourses:\n  good:\n    repo: %s\n  slow:\n    repo: %s\n", good.URL(), slowURL))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	m := NewMirrors(root, testLogger(t), Options{Timeout: 5 * time.Minute, CheckTimeout: 30 * time.Second})
	s := NewSyncer(m, root, testLogger(t), 2)
	s.Wait = time.Second

	pass := func(what string) Status {
		t.Helper()
		type result struct {
			st  Status
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := s.Sync(t.Context(), cfg, ConfigLocation{}, githash.Hash{})
			done <- result{st, err}
		}()
		select {
		case r := <-done:
			t.Logf("%s: %v", what, r.err)
			return r.st
		case <-time.After(time.Minute):
			release()
			t.Fatalf("%s: still waiting for the hanging remote after a minute", what)
			return Status{}
		}
	}

	st := pass("first pass")
	if g, _ := st.Course("good"); g.Commit.String() != goodCommit || g.Error != "" {
		t.Errorf("first pass: good course %+v, want %s checked out", g, goodCommit)
	}
	if sl, _ := st.Course("slow"); !sl.Commit.IsZero() || !strings.Contains(sl.Error, "still fetching") || !sl.Pending {
		t.Errorf("first pass: slow course %+v, want no checkout and a 'still fetching' error", sl)
	}
	st = pass("second pass, fetch still hanging")
	if sl, _ := st.Course("slow"); !sl.Pending || !strings.Contains(sl.Error, "still running") && !strings.Contains(sl.Error, "still fetching") {
		t.Errorf("second pass: slow course %+v, want the fetch reported as still running", sl)
	}

	release()
	deadline := time.Now().Add(time.Minute)
	for {
		if h, err := m.Known(slowURL, "main"); err == nil && h.String() == slowCommit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background fetch never completed")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	st = pass("third pass")
	if sl, _ := st.Course("slow"); sl.Commit.String() != slowCommit || sl.Error != "" {
		t.Errorf("third pass: slow course %+v, want %s checked out", sl, slowCommit)
	}
}

// Readers of a mirror (plans, status, checkouts) run while a fetch writes
// into it: go-git's storage is not safe for concurrent use, so they must
// not share the fetch's instance (the race detector checks).
func TestReadersDuringFetches(t *testing.T) {
	f := testenv.NewRepo(t)
	f.Commit(t, map[string]string{"a.txt": "0"}, "c0")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{})
	if _, err := m.Update(t.Context(), f.URL(), "main", nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 200 {
				select {
				case <-done:
					return
				default:
				}
				h, err := m.Known(f.URL(), "main")
				if err != nil {
					t.Error(err)
					return
				}
				repo, err := m.Repository(f.URL())
				if err != nil {
					t.Error(err)
					return
				}
				tree, err := TreeAt(repo, h, "")
				if err != nil {
					t.Errorf("tree of %s: %v", h, err)
					return
				}
				if _, err := tree.File("a.txt"); err != nil {
					t.Errorf("a.txt at %s: %v", h, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := 1; i <= 8; i++ {
		want := f.Commit(t, map[string]string{"a.txt": fmt.Sprint(i)}, fmt.Sprint("c", i))
		if h, err := m.Update(t.Context(), f.URL(), "main", nil); err != nil || h.Commit.String() != want {
			t.Fatalf("update %d: %+v, %v", i, h, err)
		}
	}
	close(done)
	wg.Wait()
	t.Logf("%d reads during 8 fetches", reads.Load())
}
