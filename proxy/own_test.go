package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowRestarter restarts after a delay longer than the front door's read
// timeout, as a real server's restart does, and records who asked.
type slowRestarter struct {
	delay time.Duration
	mu    sync.Mutex
	asked []Key
}

func (s *slowRestarter) Restart(ctx context.Context, course, student string) (Route, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return Route{}, ctx.Err()
	}
	s.mu.Lock()
	s.asked = append(s.asked, Key{course, student})
	s.mu.Unlock()
	return Route{Key: Key{course, student}, Host: "127.0.0.1:9", BasePath: "/u/" + course + "/" + student + "/"}, nil
}

// The student's own restart: only with their session, only from the
// site's own pages, and carried to its end although it takes longer than
// the front door's read timeout.
func TestOwnRestart(t *testing.T) {
	r := &slowRestarter{delay: 600 * time.Millisecond}
	p, err := New(Options{Key: testKey, Restarter: r, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	alice, bob := Key{"intro", "alice"}, Key{"intro", "bob"}
	cookie := func(k Key) string { return CookieName + "=" + p.sessions.value(k) }
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, method, path, cookie, origin string
		code                               int
		want                               string
	}{
		{"the page", http.MethodGet, "/u/intro/alice/_nbh/restart", cookie(alice), "", http.StatusOK, `<form method="post" action="/u/intro/alice/_nbh/restart">`},
		{"no session", http.MethodPost, "/u/intro/alice/_nbh/restart", "", srv.URL, http.StatusForbidden, ""},
		{"another student's session", http.MethodPost, "/u/intro/alice/_nbh/restart", cookie(bob), srv.URL, http.StatusForbidden, ""},
		{"cross-site", http.MethodPost, "/u/intro/alice/_nbh/restart", cookie(alice), "http://evil.example", http.StatusForbidden, "Cross-site"},
		{"another own path", http.MethodGet, "/u/intro/alice/_nbh/other", cookie(alice), "", http.StatusNotFound, ""},
		{"PUT", http.MethodPut, "/u/intro/alice/_nbh/restart", cookie(alice), srv.URL, http.StatusMethodNotAllowed, ""},
		{"her own, slow", http.MethodPost, "/u/intro/alice/_nbh/restart", cookie(alice), srv.URL, http.StatusSeeOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			req.Header.Set("Accept", "text/html")
			if tc.cookie != "" {
				req.Header.Set("Cookie", tc.cookie)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Errorf("%d %.200s\nwant %d with %q", resp.StatusCode, b, tc.code, tc.want)
			}
			if tc.code == http.StatusSeeOther && resp.Header.Get("Location") != "/u/intro/alice/" {
				t.Errorf("sent to %q, want her server", resp.Header.Get("Location"))
			}
		})
	}
	if len(r.asked) != 1 || r.asked[0] != alice {
		t.Errorf("restarts: %v, want alice's once", r.asked)
	}
	if rt, ok := p.Routes().Lookup(alice); !ok || rt.BasePath != "/u/intro/alice/" {
		t.Errorf("route after the restart: %+v, %v", rt, ok)
	}
}
