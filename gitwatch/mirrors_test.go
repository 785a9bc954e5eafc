package gitwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"

	"github.com/nbhosting/nbh-sync/internal/githash"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

func TestUpdateFileRemote(t *testing.T) {
	f := testenv.NewRepo(t)
	c1 := f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{})
	ctx := t.Context()

	h, err := m.Update(ctx, f.URL(), "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Commit.String() != c1 || !h.Fetched || h.Forced {
		t.Fatalf("first update: got %+v, want %s fetched", h, c1)
	}
	h, err = m.Update(ctx, f.URL(), "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Commit.String() != c1 || h.Fetched {
		t.Fatalf("no-change poll: got %+v, want %s not fetched", h, c1)
	}

	c2 := f.Commit(t, map[string]string{"b.txt": "two"}, "two")
	h, err = m.Update(ctx, f.URL(), "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Commit.String() != c2 || !h.Fetched || h.Forced || h.Previous.String() != c1 {
		t.Fatalf("after push: got %+v, want %s fetched from %s", h, c2, c1)
	}

	// Force-push: c2 is replaced by c3, which does not descend from it.
	runGit(t, f.Work, "reset", "-q", "--hard", c1)
	c3 := f.Commit(t, map[string]string{"c.txt": "three"}, "three")
	h, err = m.Update(ctx, f.URL(), "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Commit.String() != c3 || !h.Fetched || !h.Forced {
		t.Fatalf("after force-push: got %+v, want %s forced", h, c3)
	}
	repo, err := m.Repository(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitObject(plumbing.NewHash(c3)); err != nil {
		t.Fatalf("mirror lacks the new head: %v", err)
	}
}

func TestUpdateLocalPaths(t *testing.T) {
	f := testenv.NewRepo(t)
	c1 := f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{})
	// A bare repo by path, and a work tree by path: both are served
	// in-process, and map to distinct mirrors.
	for _, url := range []string{f.Bare, f.Work} {
		h, err := m.Update(t.Context(), url, "main", nil)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if h.Commit.String() != c1 {
			t.Fatalf("%s: got %s, want %s", url, h.Commit, c1)
		}
	}
	if m.Dir(f.Bare) == m.Dir(f.Work) || m.Dir(f.Bare) != m.Dir(f.URL()) {
		t.Fatalf("mirror dirs: bare %s, work %s, url %s", m.Dir(f.Bare), m.Dir(f.Work), m.Dir(f.URL()))
	}
}

func TestUpdateDeletedBranch(t *testing.T) {
	f := testenv.NewRepo(t)
	f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	runGit(t, f.Work, "push", "-q", "origin", "HEAD:refs/heads/feature")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{BackoffBase: time.Hour})
	if _, err := m.Update(t.Context(), f.URL(), "feature", nil); err != nil {
		t.Fatal(err)
	}
	runGit(t, f.Work, "push", "-q", "origin", ":refs/heads/feature")
	for i := range 2 {
		_, err := m.Update(t.Context(), f.URL(), "feature", nil)
		if !errors.Is(err, ErrBranchNotFound) {
			t.Fatalf("try %d: got %v, want ErrBranchNotFound", i, err)
		}
		// A missing branch is not a failing remote: no backoff.
		var be *BackoffError
		if errors.As(err, &be) {
			t.Fatalf("try %d: remote backed off for a missing branch: %v", i, err)
		}
	}
	// Other branches of the remote are still served.
	if _, err := m.Update(t.Context(), f.URL(), "main", nil); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateUnreachableBacksOff(t *testing.T) {
	good := testenv.NewRepo(t)
	good.Commit(t, map[string]string{"a.txt": "one"}, "one")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{BackoffBase: time.Hour, Timeout: 5 * time.Second})
	bad := "http://127.0.0.1:1/nowhere.git"

	_, err := m.Update(t.Context(), bad, "main", nil)
	var be *BackoffError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("first try: got %v, want a network error", err)
	}
	// While the bad remote backs off, calls on it return at once and the
	// good remote is served concurrently.
	var wg sync.WaitGroup
	var badErr, goodErr error
	wg.Go(func() { _, badErr = m.Update(t.Context(), bad, "main", nil) })
	wg.Go(func() { _, goodErr = m.Update(t.Context(), good.URL(), "main", nil) })
	wg.Wait()
	if !errors.As(badErr, &be) || be.Failures != 1 || time.Until(be.Until) < 20*time.Minute {
		t.Fatalf("second try: got %v, want a BackoffError of about an hour", badErr)
	}
	if goodErr != nil {
		t.Fatalf("good remote: %v", goodErr)
	}
	m.Reset(bad)
	if _, err := m.Update(t.Context(), bad, "main", nil); err == nil || errors.As(err, &be) {
		t.Fatalf("after Reset: got %v, want a network error", err)
	}
}

func TestUpdateHTTPAuth(t *testing.T) {
	dir := t.TempDir()
	f := testenv.NewRepo(t)
	c1 := f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	runGit(t, dir, "clone", "-q", "--bare", f.Bare, filepath.Join(dir, "course.git"))
	const secret = "s3cr3t-t0ken"
	srv := httpRemote(t, dir, "alice", secret)
	url := srv.URL + "/course.git"

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NBH_TEST_WRONG_PW", "wrong-"+secret)
	tests := []struct {
		name  string
		creds *manifest.Credentials
		ok    bool
	}{
		{"password file", &manifest.Credentials{Username: "alice", PasswordFile: pwFile}, true},
		{"wrong password", &manifest.Credentials{Username: "alice", PasswordEnv: "NBH_TEST_WRONG_PW"}, false},
		{"no credentials", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMirrors(t.TempDir(), testLogger(t), Options{Timeout: 10 * time.Second})
			h, err := m.Update(t.Context(), url, "main", tt.creds)
			if tt.ok {
				if err != nil || h.Commit.String() != c1 {
					t.Fatalf("got %+v, %v; want %s", h, err, c1)
				}
				if h, err = m.Update(t.Context(), url, "main", tt.creds); err != nil || h.Fetched {
					t.Fatalf("no-change poll: got %+v, %v", h, err)
				}
				return
			}
			if err == nil {
				t.Fatal("got no error, want an auth failure")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestNormalizeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://GitHub.com/Foo/Bar.git", "github.com/Foo/Bar"},
		{"https://github.com/Foo/Bar", "github.com/Foo/Bar"},
		{"https://github.com/Foo/Bar/", "github.com/Foo/Bar"},
		{"ssh://git@github.com:22/Foo/Bar.git", "github.com/Foo/Bar"},
		{"git@github.com:Foo/Bar.git", "github.com/Foo/Bar"},
		{"git://github.com/Foo/Bar.git", "github.com/Foo/Bar"},
		{"https://user@gitlab.example.org:8443/g/sub/p.git", "gitlab.example.org/g/sub/p"},
		{"file:///srv/git/x.git", "/srv/git/x.git"},
		{"/srv/git/x.git/", "/srv/git/x.git"},
	}
	for _, tt := range tests {
		if got := NormalizeURL(tt.in); got != tt.want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMirrorKey: spellings of one remote share a mirror; remotes that
// differ by scheme or port (two servers on one host) never do.
func TestMirrorKey(t *testing.T) {
	same := [][]string{
		{"https://GitHub.com/a/b.git", "https://github.com/a/b", "https://github.com:443/a/b/", "https://user@github.com/a/b.git"},
		{"ssh://git@github.com:22/a/b.git", "git@github.com:a/b", "ssh://github.com/a/b"},
		{"http://127.0.0.1:19418/x.git", "http://127.0.0.1:19418/x"},
		{"file:///srv/git/x.git", "/srv/git/x.git/"},
	}
	for _, spellings := range same {
		for _, s := range spellings[1:] {
			if mirrorKey(s) != mirrorKey(spellings[0]) || mirrorName(s) != mirrorName(spellings[0]) {
				t.Errorf("%s and %s: two mirrors (%s, %s), want one", spellings[0], s, mirrorKey(spellings[0]), mirrorKey(s))
			}
		}
	}
	apart := [][2]string{
		{"http://127.0.0.1:19418/x.git", "http://127.0.0.1:19420/x.git"},
		{"http://example.org/x.git", "https://example.org/x.git"},
		{"https://example.org/x.git", "ssh://example.org/x.git"},
		{"https://github.com/a/b", "https://github.com/a/c"},
		{"http://[::1]:8080/x", "http://[::1]:8081/x"},
	}
	for _, p := range apart {
		if mirrorName(p[0]) == mirrorName(p[1]) {
			t.Errorf("%s and %s share a mirror (%s)", p[0], p[1], mirrorKey(p[0]))
		}
	}
	if k := mirrorKey("https://TOKEN@example.org/x.git"); strings.Contains(k, "TOKEN") {
		t.Errorf("mirror key %s keeps the user", k)
	}
}

// Two git servers on one host, on two ports, each serving x.git with its
// own content: each course gets its own server's files. They used to share
// one mirror (keyed by host and path), and the second course checked out
// the first server's content.
func TestTwoServersOneHost(t *testing.T) {
	var urls []string
	var want []string
	for i, content := range []string{"served on the first port", "served on the second port"} {
		dir := t.TempDir()
		r := testenv.NewRepoAt(t, filepath.Join(dir, "x.git"), filepath.Join(t.TempDir(), "work"))
		r.Commit(t, map[string]string{"README.md": content}, fmt.Sprint("commit ", i))
		urls = append(urls, httpRemote(t, dir, "", "").URL+"/x.git")
		want = append(want, content)
	}
	if NormalizeURL(urls[0]) != NormalizeURL(urls[1]) {
		t.Fatalf("the servers do not collide by host and path: %s, %s", urls[0], urls[1])
	}
	root := t.TempDir()
	m := NewMirrors(root, testLogger(t), Options{})
	cfg := &manifest.Config{Courses: map[string]manifest.Course{
		"first":  {Name: "first", Repo: urls[0], Branch: "main"},
		"second": {Name: "second", Repo: urls[1], Branch: "main"},
	}}
	if _, err := NewSyncer(m, root, testLogger(t), 2).Sync(t.Context(), cfg, ConfigLocation{}, githash.Hash{}); err != nil {
		t.Fatal(err)
	}
	for i, course := range []string{"first", "second"} {
		b, err := os.ReadFile(filepath.Join(rootdir.Course(root, course), "README.md"))
		if err != nil || string(b) != want[i] {
			t.Errorf("course %s (%s): README %q, %v; want %q", course, urls[i], b, err, want[i])
		}
	}
	if m.Dir(urls[0]) == m.Dir(urls[1]) {
		t.Errorf("one mirror for both servers: %s", m.Dir(urls[0]))
	}
}

// TestFileTransportNeedsNoGit proves file:// is served in-process: with no
// git binary on PATH, clone, no-change poll and a new fetch all work.
func TestFileTransportNeedsNoGit(t *testing.T) {
	f := testenv.NewRepo(t)
	f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	m := NewMirrors(t.TempDir(), testLogger(t), Options{})
	t.Setenv("PATH", t.TempDir())
	if _, err := m.Update(t.Context(), f.URL(), "main", nil); err != nil {
		t.Fatalf("clone without git on PATH: %v", err)
	}
	if h, err := m.Update(t.Context(), f.Bare, "main", nil); err != nil || h.Fetched {
		t.Fatalf("poll without git on PATH: %+v %v", h, err)
	}
}

func TestShallowThenDeepenHTTP(t *testing.T) {
	dir := t.TempDir()
	f := testenv.NewRepo(t)
	c1 := f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	f.Commit(t, map[string]string{"a.txt": "two"}, "two")
	runGit(t, dir, "clone", "-q", "--bare", f.Bare, filepath.Join(dir, "course.git"))
	srv := httpRemote(t, dir, "", "")
	url := srv.URL + "/course.git"

	// Shallow by default: a course with a long history costs one commit.
	m := NewMirrors(t.TempDir(), testLogger(t), Options{Timeout: 10 * time.Second})
	if _, err := m.Update(t.Context(), url, "main", nil); err != nil {
		t.Fatal(err)
	}
	repo, err := m.Repository(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitObject(plumbing.NewHash(c1)); err == nil {
		t.Fatal("shallow fetch brought the whole history")
	}
	// A later push is fetched on top of the shallow mirror.
	f.Commit(t, map[string]string{"a.txt": "three"}, "three")
	c3 := runGit(t, f.Work, "rev-parse", "HEAD")
	runGit(t, f.Work, "push", "-q", filepath.Join(dir, "course.git"), "HEAD:refs/heads/main")
	if h, err := m.Update(t.Context(), url, "main", nil); err != nil || h.Commit.String() != c3 {
		t.Fatalf("update of a shallow mirror: %+v %v", h, err)
	}
	if err := m.Deepen(t.Context(), url, "main", nil); err != nil {
		t.Fatal(err)
	}
	// A reader sees the packs there were when it asked: ask again.
	if repo, err = m.Repository(url); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitObject(plumbing.NewHash(c1)); err != nil {
		t.Fatalf("after Deepen, first commit missing: %v", err)
	}
}

// TestMirrorsShareOneObjectCache: what readers of any mirror load lands in
// the one cache of Options.ObjectCache bytes, not in a cache per mirror
// (which grew with the number of courses).
func TestMirrorsShareOneObjectCache(t *testing.T) {
	m := NewMirrors(t.TempDir(), testLogger(t), Options{ObjectCache: 1 << 20})
	lru, ok := m.objects.(*cache.ObjectLRU)
	if !ok || lru.MaxSize != 1<<20 {
		t.Fatalf("object cache %T %+v, want one LRU of 1 MiB", m.objects, m.objects)
	}
	var heads []plumbing.Hash
	for i := range 3 {
		f := testenv.NewRepo(t)
		f.Commit(t, map[string]string{"a.txt": fmt.Sprint("course ", i)}, "one")
		h, err := m.Update(t.Context(), f.URL(), "main", nil)
		if err != nil {
			t.Fatal(err)
		}
		repo, err := m.Repository(f.URL())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := repo.CommitObject(h.Commit); err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h.Commit)
	}
	for i, h := range heads {
		if _, ok := m.objects.Get(h); !ok {
			t.Errorf("head commit of mirror %d not in the shared cache", i)
		}
	}
}
