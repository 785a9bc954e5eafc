package notify

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/manifest"
)

// hook is an httptest webhook that records the bodies it receives.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	status int
}

func newHook(t *testing.T) *hook {
	h := &hook{status: http.StatusOK}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("bad notification %q: %v", b, err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.bodies = append(h.bodies, m)
		w.WriteHeader(h.status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) n() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.bodies) }
func (h *hook) last() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bodies[len(h.bodies)-1]
}
func (h *hook) setStatus(s int) { h.mu.Lock(); h.status = s; h.mu.Unlock() }

// url is the secret URL of the hook: a path a log must never show.
func (h *hook) url() string { return h.srv.URL + "/services/T000/SECRET-TOKEN" }

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func newNotifier(t *testing.T, specs []manifest.Notifier, env map[string]string, ck *clock, logs *bytes.Buffer) *Notifier {
	t.Helper()
	n, err := New(specs, Options{
		Now:     ck.Now,
		Getenv:  func(k string) string { return env[k] },
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Timeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPayloads(t *testing.T) {
	js, sl := newHook(t), newHook(t)
	file := filepath.Join(t.TempDir(), "slack-url")
	if err := os.WriteFile(file, []byte(sl.url()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ck := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	n := newNotifier(t, []manifest.Notifier{{Kind: "json", URLEnv: "HOOK"}, {Kind: "slack", URLFile: file}},
		map[string]string{"HOOK": js.url()}, ck, &logs)
	n.Notify(t.Context(), Event{Kind: BuildFailed, Subject: "datascience", Message: "step 3: exit 1"})
	if js.n() != 1 || sl.n() != 1 {
		t.Fatalf("sent json %d, slack %d", js.n(), sl.n())
	}
	j := js.last()
	if j["kind"] != "build-failed" || j["subject"] != "datascience" || j["message"] != "step 3: exit 1" ||
		j["time"] != "2026-03-01T12:00:00Z" || !strings.Contains(j["text"].(string), "datascience") {
		t.Errorf("json payload = %v", j)
	}
	s := sl.last()
	if len(s) != 1 || s["text"] != "nbh-sync: build of image datascience failed: step 3: exit 1" {
		t.Errorf("slack payload = %v", s)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("the URL was logged: %s", logs.String())
	}
}

func TestRepeatAndRecovery(t *testing.T) {
	h := newHook(t)
	ck := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	n := newNotifier(t, []manifest.Notifier{{Kind: "json", URLEnv: "HOOK"}}, map[string]string{"HOOK": h.url()}, ck, &logs)
	fail := Event{Kind: RemoteUnreachable, Subject: "https://example.org/c.git", Message: "dial tcp: refused"}
	steps := []struct {
		name    string
		advance time.Duration
		ev      Event
		want    int // total sent so far
	}{
		{"recovery with no failure is dropped", 0, Event{Kind: RemoteRecovered, Subject: fail.Subject}, 0},
		{"first failure", 0, fail, 1},
		{"same failure soon", 30 * time.Minute, fail, 1},
		{"same failure after an hour", 31 * time.Minute, fail, 2},
		{"other message is news", time.Minute, Event{Kind: fail.Kind, Subject: fail.Subject, Message: "timeout"}, 3},
		{"other subject is news", 0, Event{Kind: fail.Kind, Subject: "x", Message: fail.Message}, 4},
		{"recovery", time.Minute, Event{Kind: RemoteRecovered, Subject: fail.Subject}, 5},
		{"second recovery is dropped", time.Minute, Event{Kind: RemoteRecovered, Subject: fail.Subject}, 5},
		{"failure right after recovery is news", time.Minute, fail, 6},
		{"a build recovery does not close a remote failure", 0, Event{Kind: BuildRecovered, Subject: fail.Subject}, 6},
	}
	for _, st := range steps {
		ck.t = ck.t.Add(st.advance)
		n.Notify(t.Context(), st.ev)
		if h.n() != st.want {
			t.Fatalf("%s: %d sent, want %d", st.name, h.n(), st.want)
		}
	}
}

func TestFailingNotifierNeverFailsAndRetries(t *testing.T) {
	h := newHook(t)
	h.setStatus(http.StatusInternalServerError)
	ck := &clock{time.Now()}
	var logs bytes.Buffer
	n := newNotifier(t, []manifest.Notifier{{Kind: "slack", URLEnv: "HOOK"}}, map[string]string{"HOOK": h.url()}, ck, &logs)
	ev := Event{Kind: ConfigRejected, Subject: "config", Message: "courses.yaml:3:1: bad"}
	n.Notify(t.Context(), ev)
	if !strings.Contains(logs.String(), "500") || strings.Contains(logs.String(), "SECRET") {
		t.Errorf("log = %s", logs.String())
	}
	// The failed send does not count: the next attempt goes out.
	h.setStatus(http.StatusOK)
	n.Notify(t.Context(), ev)
	if h.n() != 2 {
		t.Errorf("%d attempts, want 2", h.n())
	}
	n.Notify(t.Context(), ev)
	if h.n() != 2 {
		t.Errorf("repeat after success was sent")
	}
}

func TestSendTimeoutAndUnreachable(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/SECRET"
	dead.Close()
	var logs bytes.Buffer
	n := newNotifier(t, []manifest.Notifier{{Kind: "json", URLEnv: "SLOW"}, {Kind: "json", URLEnv: "DEAD"}},
		map[string]string{"SLOW": slow.URL + "/SECRET", "DEAD": deadURL}, &clock{time.Now()}, &logs)
	start := time.Now()
	n.Notify(t.Context(), Event{Kind: BuildFailed, Subject: "a"})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Notify took %v despite a 200ms timeout", d)
	}
	if c := strings.Count(logs.String(), "notification not sent"); c != 2 || strings.Contains(logs.String(), "SECRET") {
		t.Errorf("want two warnings without the URL, log = %s", logs.String())
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		spec manifest.Notifier
		env  map[string]string
		want string
	}{
		{"bad kind", manifest.Notifier{Kind: "email", URLEnv: "X"}, nil, "unknown kind"},
		{"no source", manifest.Notifier{Kind: "json"}, nil, "no url-file"},
		{"empty env", manifest.Notifier{Kind: "json", URLEnv: "X"}, nil, "env X"},
		{"not a URL", manifest.Notifier{Kind: "json", URLEnv: "X"}, map[string]string{"X": "ftp://SECRET@h/"}, "not an http(s) URL"},
		{"missing file", manifest.Notifier{Kind: "slack", URLFile: "/nonexistent/url"}, nil, "/nonexistent/url"},
	}
	for _, tt := range tests {
		_, err := New([]manifest.Notifier{tt.spec}, Options{Getenv: func(k string) string { return tt.env[k] }})
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: err = %v, want it to say %q", tt.name, err, tt.want)
		}
	}
}

func TestNilAndEmptyNotifierDrop(t *testing.T) {
	var n *Notifier
	n.Notify(t.Context(), Event{Kind: BuildFailed})
	e, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Notify(t.Context(), Event{Kind: BuildFailed})
}
