package activity

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// answer is a canned HTTP answer.
type answer struct {
	status int
	body   string
}

// apiServer answers the paths (after the base "/", query left out) it is
// given, 404 to any other, and records the requests it got.
func apiServer(t *testing.T, answers map[string]answer) (*httptest.Server, func() []*http.Request) {
	t.Helper()
	var mu sync.Mutex
	var reqs []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.Clone(r.Context()))
		mu.Unlock()
		a, ok := answers[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			a = answer{http.StatusNotFound, `{"message": "Not Found", "reason": null}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []*http.Request {
		mu.Lock()
		defer mu.Unlock()
		return reqs
	}
}

// rawServer answers GET api/kernels with status and body, and 404
// elsewhere (a server without terminals).
func rawServer(t *testing.T, status int, body string) (*httptest.Server, func() []*http.Request) {
	t.Helper()
	return apiServer(t, map[string]answer{"api/kernels": {status, body}})
}

// The probe asks for the kernels, then the terminals, with
// no_track_activity=1 (so that Jupyter does not count it as activity),
// sends the token, and nothing else.
func TestProbeRequest(t *testing.T) {
	srv, reqs := apiServer(t, map[string]answer{"30001/api/kernels": {200, `[]`}, "30001/api/terminals": {200, `[]`}})
	testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/30001/", Token: "tok", StartedAt: t0.Add(-time.Hour)}})
	got := reqs()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	for i, path := range []string{"/30001/api/kernels", "/30001/api/terminals"} {
		r := got[i]
		if r.Method != http.MethodGet || r.URL.Path != path || r.URL.RawQuery != "no_track_activity=1" {
			t.Errorf("request %d: %s %s, want GET %s?no_track_activity=1", i, r.Method, r.URL, path)
		}
		if h := r.Header.Get("Authorization"); h != "token tok" {
			t.Errorf("request %d: Authorization %q, want %q", i, h, "token tok")
		}
	}
}

// Terminals count as activity too: a student may work in one only.
func TestProbeTerminals(t *testing.T) {
	started := t0.Add(-5 * time.Hour)
	idleKernel := answer{200, `[{"id":"k","last_activity":"2025-03-01T09:00:00Z","execution_state":"idle"}]`}
	busyKernel := answer{200, `[{"id":"k","last_activity":"2025-03-01T09:00:00Z","execution_state":"busy"}]`}
	for _, tc := range []struct {
		desc      string
		kernels   answer
		terminals *answer // nil: 404, terminals disabled
		want      Result
		requests  int
	}{
		{"a terminal newer than the kernels", idleKernel, &answer{200, `[{"name":"1","last_activity":"2025-03-01T11:30:00.5Z"}]`},
			Result{State: Answered, Kernels: 1, Terminals: 1, LastActivity: t0.Add(-30*time.Minute + 500*time.Millisecond)}, 2},
		{"a terminal older than the kernels", idleKernel, &answer{200, `[{"name":"1","last_activity":"2025-03-01T08:00:00Z"}]`},
			Result{State: Answered, Kernels: 1, Terminals: 1, LastActivity: t0.Add(-3 * time.Hour)}, 2},
		{"terminals only: their activity, not the start", answer{200, `[]`}, &answer{200, `[{"name":"1","last_activity":"2025-03-01T10:00:00Z"},{"name":"2","last_activity":"2025-03-01T08:00:00Z"}]`},
			Result{State: Answered, Terminals: 2, LastActivity: t0.Add(-2 * time.Hour)}, 2},
		{"no kernel, no terminal: idle since start", answer{200, `[]`}, &answer{200, `[]`},
			Result{State: Answered, LastActivity: started}, 2},
		{"terminals disabled (404)", idleKernel, nil,
			Result{State: Answered, Kernels: 1, LastActivity: t0.Add(-3 * time.Hour)}, 2},
		{"a busy kernel settles it: terminals not read", busyKernel, &answer{200, `[{"name":"1","last_activity":"2025-03-01T11:30:00Z"}]`},
			Result{State: Answered, Kernels: 1, Busy: true, LastActivity: t0.Add(-3 * time.Hour)}, 1},
		{"terminals refused: unknown", idleKernel, &answer{403, `{"message": "Forbidden"}`}, Result{State: Unknown}, 2},
		{"terminals unreadable: unknown", idleKernel, &answer{200, `[{"name":"1","last_activity":"soon"}]`}, Result{State: Unknown}, 2},
	} {
		answers := map[string]answer{"api/kernels": tc.kernels}
		if tc.terminals != nil {
			answers["api/terminals"] = *tc.terminals
		}
		srv, reqs := apiServer(t, answers)
		got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: started}})["c"]
		if (got.Err != "") != (tc.want.State == Unknown) {
			t.Errorf("%s: error %q", tc.desc, got.Err)
		}
		got = summary(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
		if n := len(reqs()); n != tc.requests {
			t.Errorf("%s: %d requests, want %d", tc.desc, n, tc.requests)
		}
	}
}

// A server that answers for its kernels but drops the terminals request is
// not down: unknown, never unreachable (which would count as idle).
func TestTerminalsNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/api/terminals") {
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			c.Close()
			return
		}
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: t0.Add(-5 * time.Hour)}})["c"]
	if got.State != Unknown || got.Idle(t0, time.Minute) {
		t.Errorf("got %+v, want unknown, not idle", got)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 28, 16, 58, 23, 511086000, time.UTC)
	whole := time.Date(2026, 11, 28, 16, 58, 23, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2026-11-28T16:58:23.511086Z", want: want}, // jupyter_server, notebook 6
		{in: "2026-11-28T16:58:23Z", want: whole},       // isoformat drops a zero fraction
		{in: "2026-11-28T16:58:23.511086+00:00", want: want},
		{in: "2026-11-28T17:58:23.511086+01:00", want: want},
		{in: "2026-11-28T16:58:23.511086", want: want}, // naive UTC
		{in: "2026-11-28T16:58:23", want: whole},
		{in: "2026-11-28 16:58:23.511086+00:00", want: want}, // str(datetime)
		{in: "2026-11-28 16:58:23.511086", want: want},
		{in: "2026-11-28T16:58:23.511086123Z", want: want.Add(123)},
		{in: " 2026-11-28T16:58:23Z ", want: whole},
		{in: "", bad: true},
		{in: "2026-11-28", bad: true},
		{in: "yesterday", bad: true},
		{in: "1764349103", bad: true},
	} {
		got, err := parseTime(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseTime(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// Answers the servers may give, kernel by kernel.
func TestProbeKernels(t *testing.T) {
	started := t0.Add(-5 * time.Hour)
	for _, tc := range []struct {
		desc   string
		status int
		body   string
		want   Result
	}{
		{"a starting kernel is activity at its creation, not busy", 200,
			`[{"id":"k","last_activity":"2025-03-01T11:50:00.000001Z","execution_state":"starting"}]`,
			Result{State: Answered, Kernels: 1, Starting: 1, LastActivity: time.Date(2025, 3, 1, 11, 50, 0, 1000, time.UTC)}},
		{"a starting kernel next to a busy one", 200,
			`[{"id":"k1","last_activity":"2025-03-01T09:00:00Z","execution_state":"starting"},
			  {"id":"k2","last_activity":"2025-03-01T08:00:00Z","execution_state":"busy"}]`,
			Result{State: Answered, Kernels: 2, Starting: 1, Busy: true, LastActivity: t0.Add(-3 * time.Hour)}},
		{"restarting and dead kernels are not busy", 200,
			`[{"id":"k1","last_activity":"2025-03-01T09:00:00Z","execution_state":"restarting"},
			  {"id":"k2","last_activity":"2025-03-01T10:00:00Z","execution_state":"dead"}]`,
			Result{State: Answered, Kernels: 2, LastActivity: t0.Add(-2 * time.Hour)}},
		{"unknown fields ignored, connections counted", 200,
			`[{"id":"k","name":"python3","last_activity":"2025-03-01T10:00:00Z","execution_state":"idle","connections":2,"extra":{"a":1}}]`,
			Result{State: Answered, Kernels: 1, Connections: 2, LastActivity: t0.Add(-2 * time.Hour)}},
		{"connections summed over kernels, a negative count ignored", 200,
			`[{"id":"k1","last_activity":"2025-03-01T10:00:00Z","execution_state":"idle","connections":1},
			  {"id":"k2","last_activity":"2025-03-01T09:00:00Z","execution_state":"idle","connections":-1},
			  {"id":"k3","last_activity":"2025-03-01T09:00:00Z","execution_state":"idle","connections":3}]`,
			Result{State: Answered, Kernels: 3, Connections: 4, LastActivity: t0.Add(-2 * time.Hour)}},
		{"no last_activity: unknown", 200,
			`[{"id":"k","execution_state":"idle"}]`,
			Result{State: Unknown}},
		{"null last_activity: unknown", 200,
			`[{"id":"k","last_activity":null,"execution_state":"idle"}]`,
			Result{State: Unknown}},
		{"unreadable last_activity: unknown", 200,
			`[{"id":"k1","last_activity":"2025-03-01T10:00:00Z","execution_state":"idle"},
			  {"id":"k2","last_activity":"noon","execution_state":"idle"}]`,
			Result{State: Unknown}},
		{"a login page: unknown", 200, `<!DOCTYPE html><html>login</html>`, Result{State: Unknown}},
		{"an object, not a list: unknown", 200, `{"message":"hi"}`, Result{State: Unknown}},
		{"forbidden: unknown", 403, `{"message": "Forbidden", "reason": null}`, Result{State: Unknown}},
		{"server error: unknown", 500, `oops`, Result{State: Unknown}},
	} {
		srv, _ := rawServer(t, tc.status, tc.body)
		got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: started}})["c"]
		if (got.Err != "") != (tc.want.State == Unknown) {
			t.Errorf("%s: error %q", tc.desc, got.Err)
		}
		got = summary(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
		if tc.want.State == Unknown && got.Idle(t0, time.Minute) {
			t.Errorf("%s: idle", tc.desc)
		}
	}
}

// A server whose only kernel stays "starting" (no client ever connected)
// becomes idle like any other once its creation is old enough.
func TestStartingKernelIdles(t *testing.T) {
	srv, _ := rawServer(t, http.StatusOK, `[{"id":"k","last_activity":"2025-03-01T11:00:00Z","execution_state":"starting"}]`)
	got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: t0.Add(-90 * time.Minute)}})["c"]
	if got.Busy || !got.Idle(t0, 30*time.Minute) || got.Idle(t0, 2*time.Hour) {
		t.Errorf("starting kernel, an hour old: %+v; want idle for 30m, not for 2h", got)
	}
}

// The probe reads the verbatim answers recorded from the real servers
// (internal/jupytertest/testdata), both flavors.
func TestProbeRecordedAnswers(t *testing.T) {
	for _, flavor := range []string{"server", "notebook"} {
		dir := filepath.Join("..", "internal", "jupytertest", "testdata", flavor)
		for _, tc := range []struct {
			file      string
			status    int
			wantState State
			busy      bool
			kernels   int
		}{
			{"api_kernels_empty.json", 200, Answered, false, 0},
			{"api_kernels_idle.json", 200, Answered, false, 1},
			{"api_kernels_busy.json", 200, Answered, true, 1},
			{"api_kernels_no_token.json", 403, Unknown, false, 0},
		} {
			body, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			srv, _ := rawServer(t, tc.status, string(body))
			// StartedAt far back, so that LastActivity comes from the kernel.
			started := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
			got := testProber().Probe(t.Context(), []Target{{ID: "c", URL: srv.URL + "/", StartedAt: started}})["c"]
			if got.State != tc.wantState || got.Busy != tc.busy || got.Kernels != tc.kernels {
				t.Errorf("%s/%s: got %+v, want state %s, busy %v, %d kernels", flavor, tc.file, got, tc.wantState, tc.busy, tc.kernels)
			}
			if tc.kernels > 0 && (got.LastActivity.Year() < 2025 || got.LastActivity.Nanosecond()%1000 != 0 || got.LastActivity.Nanosecond() == 0) {
				t.Errorf("%s/%s: last activity %v, want the kernel's, with microseconds", flavor, tc.file, got.LastActivity)
			}
		}
	}
}
