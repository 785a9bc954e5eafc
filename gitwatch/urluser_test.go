package gitwatch

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/manifest"

	"github.com/nbhosting/nbh-sync/internal/githash"
)

// A token given as a URL's user name (https://TOKEN@host/x.git) never
// reaches an error, a log line or the status the syncer keeps, whatever
// the remote does: validation refuses such a URL, and this is the defence
// behind it for a caller that skipped it.
func TestURLUserNeverShown(t *testing.T) {
	const token = "ghp_USERNAMETOKEN42"
	closed := func() string { // a port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}()
	status := func(code int) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", code)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+closed+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	for _, tt := range []struct{ name, host string }{
		{"refused", closed},
		{"401", strings.TrimPrefix(status(http.StatusUnauthorized).URL, "http://")},
		{"500", strings.TrimPrefix(status(http.StatusInternalServerError).URL, "http://")},
		{"redirected", strings.TrimPrefix(redirect.URL, "http://")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			root := t.TempDir()
			m := NewMirrors(root, log, Options{Timeout: 5 * time.Second, BackoffBase: time.Hour})
			url := "http://" + token + "@" + tt.host + "/course.git"
			_, err := m.Update(t.Context(), url, "main", nil)
			if err == nil {
				t.Fatal("update succeeded")
			}
			_, berr := m.Update(t.Context(), url, "main", nil) // in backoff now
			cfg := &manifest.Config{Courses: map[string]manifest.Course{"c": {Name: "c", Repo: url, Branch: "main"}}}
			st, serr := NewSyncer(m, root, log, 1).Sync(t.Context(), cfg, ConfigLocation{}, githash.Hash{})
			stJSON, _ := json.Marshal(st)
			texts := map[string]string{"error": err.Error(), "backoff error": berr.Error(), "log": logs.String(), "status": string(stJSON)}
			if serr != nil {
				texts["sync error"] = serr.Error()
			}
			for what, text := range texts {
				if strings.Contains(text, token) {
					t.Errorf("the token appears in the %s: %s", what, text)
				}
			}
			if !strings.Contains(err.Error(), tt.host) {
				t.Errorf("the error no longer names the remote: %v", err)
			}
		})
	}
}

// TestRedactText cuts the user information of every URL in a text, and
// nothing else.
func TestRedactText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`Get "https://TOKEN@example.org/x.git/info/refs": EOF`, `Get "https://example.org/x.git/info/refs": EOF`},
		{"fetch http://u:p@h:1/x and https://T@h2/y", "fetch http://h:1/x and https://h2/y"},
		{"a@b.c wrote git@host:x.git", "a@b.c wrote git@host:x.git"},
		{"https://host/path@v1", "https://host/path@v1"},
		{"https://a@b@host/x", "https://host/x"},
	} {
		if got := RedactText(tt.in); got != tt.want {
			t.Errorf("RedactText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestLocateConfigRefusesUser: --config with a user name (maybe a token)
// is refused, without quoting it, naming the flags to use instead.
func TestLocateConfigRefusesUser(t *testing.T) {
	for _, loc := range []string{"https://TOKEN123@example.org/site.git", "https://bot:TOKEN123@example.org/site.git"} {
		_, err := LocateConfig(loc, "")
		if err == nil {
			t.Errorf("%s: accepted", RedactURL(loc))
			continue
		}
		if strings.Contains(err.Error(), "TOKEN123") || !strings.Contains(err.Error(), "--config-password-file") {
			t.Errorf("%s: %v; want a refusal naming --config-password-file, without the token", RedactURL(loc), err)
		}
	}
	if _, err := LocateConfig("ssh://git@example.org/site.git", ""); err != nil {
		t.Errorf("an ssh login name is not a secret: %v", err)
	}
}
