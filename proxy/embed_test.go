package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

const lms = "https://lms.example.org"

// The front door decides who may frame a student's pages: its policy is on
// every answer, its own and the servers', and a server's own word on
// framing (Jupyter's frame-ancestors 'self') is dropped, the rest of its
// policy kept.
func TestFramingPolicyIsTheFrontDoors(t *testing.T) {
	rt := studentServer(t, "flot", "alice", map[string]http.HandlerFunc{
		"framed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "frame-ancestors 'self'; report-uri /u/flot/alice/api/security/csp-report")
			w.Header().Add("Content-Security-Policy", "sandbox allow-scripts; FRAME-ANCESTORS *")
			w.Header().Set("X-Frame-Options", "ALLOWALL")
		},
	})
	for _, tc := range []struct {
		name      string
		ancestors []string
		policy    string
		xfo       string
	}{
		{"no embedding", nil, "frame-ancestors 'self'", "SAMEORIGIN"},
		{"an LMS", []string{lms, "HTTP://Localhost:8080/"}, "frame-ancestors 'self' https://lms.example.org http://localhost:8080", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFront(t, Options{FrameAncestors: tc.ancestors})
			f.Routes().Set(rt)
			cookie := f.login(t, rt)
			for _, path := range []string{"/u/flot/alice/framed", "/u/flot/alice/", "/u/flot/bob/", "/nowhere"} {
				resp := f.get(t, path, cookie)
				want := []string{tc.policy}
				if path == "/u/flot/alice/framed" {
					want = append(want, "report-uri /u/flot/alice/api/security/csp-report", "sandbox allow-scripts")
				}
				if got := resp.Header.Values("Content-Security-Policy"); !slices.Equal(got, want) {
					t.Errorf("%s: Content-Security-Policy %q, want %q", path, got, want)
				}
				if got := resp.Header.Values("X-Frame-Options"); tc.xfo == "" && len(got) != 0 || tc.xfo != "" && !slices.Equal(got, []string{tc.xfo}) {
					t.Errorf("%s: X-Frame-Options %q, want %q", path, got, tc.xfo)
				}
			}
		})
	}
	if _, err := New(Options{Key: testKey, FrameAncestors: []string{"https://lms.example.org 'unsafe-inline'"}}); err == nil {
		t.Error("an origin with a space was taken into the policy")
	}
}

// A session opened in a frame of an allowed site gets a cookie the browser
// sends there — SameSite=None; Partitioned, which needs Secure — and one
// opened in a tab of its own stays Lax.
func TestSessionCookieOfAFrame(t *testing.T) {
	rt := studentServer(t, "flot", "alice", nil)
	for _, tc := range []struct {
		name      string
		ancestors []string
		secure    bool
		dest      string
		want      string // the cookie's attributes after its value
	}{
		{"tab", []string{lms}, true, "document", "; Path=/u/flot/alice/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"},
		{"frame", []string{lms}, true, "iframe", "; Path=/u/flot/alice/; Max-Age=43200; HttpOnly; Secure; SameSite=None; Partitioned"},
		{"frame, no TLS", []string{lms}, false, "iframe", "; Path=/u/flot/alice/; Max-Age=43200; HttpOnly; SameSite=Lax"},
		{"frame, no embedding", nil, true, "iframe", "; Path=/u/flot/alice/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFront(t, Options{FrameAncestors: tc.ancestors, SecureCookies: tc.secure, Scheme: "http"})
			f.Routes().Set(rt)
			resp := f.get(t, f.Launch(rt), "Sec-Fetch-Dest: "+tc.dest, "Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: cross-site")
			sc := resp.Header.Get("Set-Cookie")
			if _, attrs, _ := strings.Cut(sc, "; "); resp.StatusCode != http.StatusSeeOther || "; "+attrs != tc.want {
				t.Errorf("%s, Set-Cookie %q; want attributes %q", resp.Status, sc, tc.want)
			}
		})
	}
}

// With embedding, other sites' requests that are not navigations are
// refused, cookie or not: SameSite=None must not let an allowed platform's
// scripts, images or forms use a student's session. Navigations (the
// frame itself) and the server's own pages' requests pass.
func TestEmbeddingRefusesCrossSiteSubresources(t *testing.T) {
	rt := studentServer(t, "flot", "alice", nil)
	f := newFront(t, Options{FrameAncestors: []string{lms}})
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	for _, tc := range []struct {
		method string
		fetch  []string // Sec-Fetch-Site, -Mode, -Dest
		want   int
	}{
		{"GET", []string{"cross-site", "navigate", "iframe"}, http.StatusOK},
		{"GET", []string{"same-origin", "cors", "empty"}, http.StatusOK},
		{"GET", nil, http.StatusOK}, // no fetch metadata: not a browser's
		{"GET", []string{"cross-site", "no-cors", "image"}, http.StatusForbidden},
		{"GET", []string{"cross-site", "cors", "empty"}, http.StatusForbidden},
		{"GET", []string{"same-site", "no-cors", "script"}, http.StatusForbidden},
		{"POST", []string{"cross-site", "navigate", "iframe"}, http.StatusForbidden},
	} {
		h := []string{cookie}
		if tc.fetch != nil {
			h = append(h, "Sec-Fetch-Site: "+tc.fetch[0], "Sec-Fetch-Mode: "+tc.fetch[1], "Sec-Fetch-Dest: "+tc.fetch[2])
		}
		if resp := f.at(t, tc.method, "", "/u/flot/alice/tree", h...); resp.StatusCode != tc.want {
			t.Errorf("%s %v: %s, want %d", tc.method, tc.fetch, resp.Status, tc.want)
		}
	}
}

// A frame whose session did not stick (third-party cookies blocked) gets
// a page that says so, with a way out: its address in a tab of its own —
// not the login page, which would not help inside the frame.
func TestFrameWithoutSessionSaysWhy(t *testing.T) {
	rt := studentServer(t, "flot", "alice", nil)
	f := newFront(t, Options{FrameAncestors: []string{lms}, LoginURL: "https://hub.example.org/login"})
	f.Routes().Set(rt)
	resp := f.get(t, "/u/flot/alice/notebooks/a.ipynb", "Accept: text/html", "Sec-Fetch-Dest: iframe", "Sec-Fetch-Mode: navigate", "Sec-Fetch-Site: cross-site")
	b := body(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "blocks third-party cookies") ||
		!strings.Contains(b, `href="/u/flot/alice/notebooks/a.ipynb" target="_blank"`) {
		t.Errorf("%s\n%s", resp.Status, b)
	}
	// In a tab of its own, the login page as before.
	if resp := f.get(t, "/u/flot/alice/notebooks/a.ipynb", "Accept: text/html", "Sec-Fetch-Dest: document"); resp.StatusCode != http.StatusFound {
		t.Errorf("in a tab: %s, want the login page", resp.Status)
	}
}
