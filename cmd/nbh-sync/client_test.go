package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/server/servertest"
)

// recorder is a daemon API that records the tokens it was sent.
type recorder struct {
	mu     sync.Mutex
	tokens []string
	calls  int
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.calls++
		if a := req.Header.Get("Authorization"); a != "" {
			r.tokens = append(r.tokens, a)
		}
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) count() (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, append([]string(nil), r.tokens...)
}

// fakeDaemon serves a fake backend on ln.
func fakeDaemon(t *testing.T, ln net.Listener) *recorder {
	t.Helper()
	be := &servertest.Backend{
		ReadyFunc:  func() error { return nil },
		StatusFunc: func(context.Context) (api.Status, error) { return api.Status{Revision: "feedface"}, nil },
		SyncFunc: func(context.Context, api.SyncRequest) (api.SyncResult, error) {
			return api.SyncResult{Courses: []string{"a"}}, nil
		},
		SpawnFunc: func(_ context.Context, req api.SpawnRequest) (api.SpawnResult, error) {
			return api.SpawnResult{Name: req.Course + "-x-" + req.Student, ID: "c0ffee", State: "created", Port: 30001,
				URL: "http://127.0.0.1:30001/30001/", Host: "10.0.0.7",
				Token: "jt", LaunchURL: "https://hub.example.org/u/" + req.Course + "/" + req.Student + "/?nbh-ticket=tk"}, nil
		},
	}
	return serveDaemon(t, ln, be)
}

// serveDaemon serves be on ln as a daemon's API with the token "tok".
func serveDaemon(t *testing.T, ln net.Listener, be *servertest.Backend) *recorder {
	t.Helper()
	srv, err := server.New(server.Config{Backend: be, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	hs := &http.Server{Handler: rec.wrap(srv.Handler()), ReadHeaderTimeout: time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return rec
}

func tokenFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The command line finds the daemon of its --root by the socket under it,
// says so, and sends it the token.
func TestCLITalksToTheDaemonOfItsRoot(t *testing.T) {
	root := t.TempDir()
	ln, err := server.ListenSocket(t.Context(), rootdir.APISocket(root))
	if err != nil {
		t.Fatal(err)
	}
	rec := fakeDaemon(t, ln)
	code, out, errOut := runCLI(t, "--root", root, "--api-token-file", tokenFile(t), "sync")
	if code != 0 || !strings.Contains(out, "pass queued by the daemon at unix:"+rootdir.APISocket(root)) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "talking to the daemon") {
		t.Errorf("the CLI does not say which daemon it talks to:\n%s", errOut)
	}
	if _, toks := rec.count(); len(toks) == 0 || toks[0] != "Bearer tok" {
		t.Errorf("tokens sent: %q, want the token", toks)
	}
	// --config given: the daemon's own config is used, and the CLI says so.
	code, out, errOut = runCLI(t, "--root", root, "--config", "/elsewhere", "status", "--json")
	var st api.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Revision != "feedface" {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "--config is not used") {
		t.Errorf("--config silently ignored:\n%s", errOut)
	}
}

// sync --allow-mass-prune through a daemon confirms the held revision
// before it queues the pass (the flag was once dropped on the way).
func TestSyncConfirmsMassPruneToTheDaemon(t *testing.T) {
	root := t.TempDir()
	ln, err := server.ListenSocket(t.Context(), rootdir.APISocket(root))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []string
	record := func(c string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
	}
	be := &servertest.Backend{
		ReadyFunc: func() error { return nil },
		ConfirmPruneFunc: func(_ context.Context, rev string) error {
			record("confirm " + rev)
			return nil
		},
		SyncFunc: func(context.Context, api.SyncRequest) (api.SyncResult, error) {
			record("sync")
			return api.SyncResult{Courses: []string{"a"}}, nil
		},
	}
	serveDaemon(t, ln, be)

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"sync"}, []string{"sync"}},
		{[]string{"sync", "--allow-mass-prune"}, []string{"confirm ", "sync"}},
	} {
		calls = nil
		code, out, errOut := runCLI(t, append([]string{"--root", root, "--api-token-file", tokenFile(t)}, tc.args...)...)
		if code != 0 || !strings.Contains(out, "pass queued") {
			t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", tc.args, code, out, errOut)
		}
		mu.Lock()
		got := strings.Join(calls, ",")
		mu.Unlock()
		if got != strings.Join(tc.want, ",") {
			t.Errorf("%v: the daemon was asked %q, want %q", tc.args, got, tc.want)
		}
		if confirmed := strings.Contains(errOut, "mass prune confirmed"); confirmed != (len(tc.want) == 2) {
			t.Errorf("%v: stderr %q", tc.args, errOut)
		}
	}
}

// spawn prints the launch URL a daemon running the front door answers, in
// words and in its JSON document.
func TestSpawnPrintsLaunchURL(t *testing.T) {
	root := t.TempDir()
	ln, err := server.ListenSocket(t.Context(), rootdir.APISocket(root))
	if err != nil {
		t.Fatal(err)
	}
	fakeDaemon(t, ln)
	const launch = "https://hub.example.org/u/intro/alice/?nbh-ticket=tk"
	code, out, errOut := runCLI(t, "--root", root, "--api-token-file", tokenFile(t), "spawn", "intro", "alice")
	if code != 0 || !strings.Contains(out, "intro-x-alice created on port 30001: http://127.0.0.1:30001/30001/?token=jt\n") ||
		!strings.Contains(out, "launch (once, within a minute): "+launch+"\n") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "--root", root, "--api-token-file", tokenFile(t), "spawn", "intro", "alice", "--json")
	var doc map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if doc["launch_url"] != launch || doc["name"] != "intro-x-alice" || doc["token"] != "jt" || doc["port"] != float64(30001) ||
		doc["id"] != "c0ffee" || doc["host"] != "10.0.0.7" {
		t.Errorf("spawn --json: %s", out)
	}
	// Through the daemon, the document has every key a direct spawn
	// prints (it once lost id and host on the way).
	b, err := json.Marshal(containers.Spawned{Name: "n", ID: "i", State: "s", Port: 1, URL: "u", Host: "h", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var direct map[string]any
	if err := json.Unmarshal(b, &direct); err != nil {
		t.Fatal(err)
	}
	for k := range direct {
		if _, ok := doc[k]; !ok {
			t.Errorf("spawn --json through the daemon has no %q (a direct spawn has): %s", k, out)
		}
	}
}

// A socket under --root that another user made is refused before any
// token goes to it; without a socket the command says it works directly;
// nothing is asked of a TCP port no flag names.
func TestCLIRefusesForeignDaemons(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another uid needs root")
	}
	root := t.TempDir()
	ln, err := server.ListenSocket(t.Context(), rootdir.APISocket(root))
	if err != nil {
		t.Fatal(err)
	}
	rec := fakeDaemon(t, ln)
	if err := os.Chown(rootdir.APISocket(root), 12345, 12345); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "--root", root, "--api-token-file", tokenFile(t), "sync")
	if code != 1 || !strings.Contains(errOut, "refusing the daemon socket") || !strings.Contains(errOut, "uid 12345") {
		t.Errorf("foreign socket: exit %d, stderr:\n%s", code, errOut)
	}
	if n, _ := rec.count(); n != 0 {
		t.Errorf("the foreign socket got %d requests", n)
	}

	// Whatever answers on the old default port gets nothing.
	tcp, err := net.Listen("tcp", "127.0.0.1:8787")
	if err != nil {
		t.Logf("127.0.0.1:8787 is taken (%v): that part is not checked", err)
	} else {
		squatter := fakeDaemon(t, tcp)
		empty := t.TempDir()
		_, _, errOut = runCLI(t, "--root", empty, "--api-token-file", tokenFile(t), "--config", empty, "history", "--json")
		if n, _ := squatter.count(); n != 0 {
			t.Errorf("a listener on 127.0.0.1:8787 got %d requests from a CLI that named no daemon", n)
		}
		if !strings.Contains(errOut, "working directly") {
			t.Errorf("the CLI does not say it works directly:\n%s", errOut)
		}
	}

	// An --api that does not answer is an error, not a silent fallback.
	code, _, errOut = runCLI(t, "--api", "unix:"+filepath.Join(t.TempDir(), "nothing.sock"), "status")
	if code != 1 || !strings.Contains(errOut, "no daemon answers") {
		t.Errorf("--api to nothing: exit %d, stderr:\n%s", code, errOut)
	}
}
