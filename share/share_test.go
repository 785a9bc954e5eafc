package share

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreServes(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "shares")}
	token, err := s.Put([]byte("<h1>hello</h1><script>alert(1)</script>"))
	if err != nil {
		t.Fatal(err)
	}
	if !tokenRE.MatchString(token) {
		t.Fatalf("token %q", token)
	}
	if st, err := os.Stat(s.path(token)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stored: %v, %v; want 0600", st, err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path string
		code               int
		body               string
	}{
		{"the snapshot", "GET", Prefix + token, 200, "<h1>hello</h1>"},
		{"head", "HEAD", Prefix + token, 200, ""},
		{"another token", "GET", Prefix + strings.Repeat("A", 43), 404, "no such share"},
		{"not a token", "GET", Prefix + "../shares/" + token, 404, ""},
		{"a prefix of it", "GET", Prefix + token[:20], 404, ""},
		{"read-only", "POST", Prefix + token, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%s %s: %s %q, want %d %q", tc.method, tc.path, resp.Status, b, tc.code, tc.body)
			}
			if tc.code == 200 {
				// The student's HTML runs nowhere: no script, an origin of its own.
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox;") || strings.Contains(csp, "script") {
					t.Errorf("CSP %q, want a sandbox without scripts", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Error("no nosniff")
				}
			}
		})
	}
}
