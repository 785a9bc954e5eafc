package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/server"
)

func TestDemoAction(t *testing.T) {
	var asked []api.SpawnRequest
	be := fakeBackend(&calls{})
	be.SpawnFunc = func(_ context.Context, r api.SpawnRequest) (api.SpawnResult, error) {
		asked = append(asked, r)
		if r.Course == "nodoor" {
			return api.SpawnResult{Name: "nodoor-x-" + r.Student}, nil
		}
		return api.SpawnResult{Name: r.Course + "-x-" + r.Student, State: "created", Token: "secret",
			LaunchURL: "http://127.0.0.1:8788/u/" + r.Course + "/" + r.Student + "/?ticket=t"}, nil
	}
	s, err := server.New(server.Config{Backend: be, Token: token, Demo: &server.Demo{Student: "alice", UID: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		name             string
		host, origin     string
		fetchSite, body  string
		code             int
		contains, absent string
	}{
		{"from the dashboard", "127.0.0.1:8787", "http://127.0.0.1:8787", "same-origin", `{"course":"demo"}`, 200, `"launch_url": "http://127.0.0.1:8788/u/demo/alice/?ticket=t"`, "secret"},
		{"an older browser sends no Sec-Fetch-Site", "localhost:8787", "http://localhost:8787", "", `{"course":"demo"}`, 200, `"name": "demo-x-alice"`, ""},
		{"from another site's page", "127.0.0.1:8787", "http://evil.example", "cross-site", `{"course":"demo"}`, 403, "dashboard's own page", ""},
		{"a form of another site that hides its origin", "127.0.0.1:8787", "null", "cross-site", `{"course":"demo"}`, 403, "own page", ""},
		{"with no origin (curl)", "127.0.0.1:8787", "", "", `{"course":"demo"}`, 403, "own page", ""},
		{"a name rebound to this address", "evil.example:8787", "http://evil.example:8787", "same-origin", `{"course":"demo"}`, 403, "not allowed", ""},
		{"no course", "127.0.0.1:8787", "http://127.0.0.1:8787", "same-origin", `{}`, 400, "required", ""},
		{"no front door", "127.0.0.1:8787", "http://127.0.0.1:8787", "same-origin", `{"course":"nodoor"}`, 503, "--proxy-listen", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://"+tc.host+"/api/demo", strings.NewReader(tc.body))
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tc.fetchSite)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != tc.code || !strings.Contains(body, tc.contains) || tc.absent != "" && strings.Contains(body, tc.absent) {
				t.Errorf("= %d %s, want %d containing %q", w.Code, body, tc.code, tc.contains)
			}
		})
	}
	for _, r := range asked {
		if r.Student != "alice" || r.UID == nil || *r.UID != 1000 {
			t.Errorf("spawn asked %+v, want the demo student alice as uid 1000", r)
		}
	}
	if len(asked) != 3 {
		t.Errorf("%d spawns, want 3 (only the allowed calls spawn)", len(asked))
	}
}

// Without the demo credential there is no demo endpoint, and no button.
func TestNoDemoByDefault(t *testing.T) {
	ts := newServer(t, fakeBackend(&calls{}), nil)
	hr, _ := http.NewRequest("POST", ts.URL+"/api/demo", strings.NewReader(`{"course":"demo"}`))
	hr.Header.Set("Origin", ts.URL)
	resp, err := ts.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/demo = %d without --demo, want 404 or 405", resp.StatusCode)
	}
	_, _, page := do(t, ts, req{"GET", "/", "", ""})
	if strings.Contains(page, `class="demo-open"`) {
		t.Error("the dashboard offers the demo action without --demo")
	}
}
