// Package share keeps the read-only snapshots of notebooks that students
// share — HTML made by nbconvert in the student's container — and serves
// them at unguessable addresses.
//
// A snapshot is the student's content: its HTML, and any script in it, is
// theirs. So it is served in a sandbox (Content-Security-Policy: sandbox,
// no script, nothing fetched from elsewhere): it gets an origin of its own,
// and can neither read the front door's cookies nor talk to anyone's
// server. Math shows as its TeX source and widgets as their fallback text;
// text, code, tables and images (inlined by nbconvert) show as they are.
package share

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Prefix is where the front door serves snapshots: Prefix + token.
const Prefix = "/share/"

// tokenRE is what Put makes: 32 random bytes, base64url without padding.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// ErrNotFound: no snapshot has this token.
var ErrNotFound = errors.New("no such share")

// Store keeps snapshots as DIR/TOKEN.html (0600: only the daemon reads
// them, and serves them).
type Store struct {
	Dir string
}

// Put stores an HTML snapshot and returns its token: 256 random bits,
// which whoever has the link can read the snapshot with.
func (s Store) Put(html []byte) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("share: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("share: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	if _, err := tmp.Write(html); err != nil {
		tmp.Close()
		return "", fmt.Errorf("share: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("share: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path(token)); err != nil {
		return "", fmt.Errorf("share: %w", err)
	}
	return token, nil
}

func (s Store) path(token string) string { return filepath.Join(s.Dir, token+".html") }

// Read returns the snapshot of token, or ErrNotFound.
func (s Store) Read(token string) ([]byte, error) {
	if !tokenRE.MatchString(token) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(s.path(token))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// Headers of a snapshot: a sandbox with no scripts and nothing loaded from
// elsewhere (nbconvert inlines styles and images), never sniffed, cached,
// framed or referred from.
var headers = map[string]string{
	"Content-Type":            "text/html; charset=utf-8",
	"Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "private, no-store",
	"X-Frame-Options":         "DENY",
}

// Handler serves GET and HEAD Prefix+TOKEN; anything else is 404 or 405.
func (s Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := s.Read(token)
		if errors.Is(err, ErrNotFound) {
			http.Error(w, "no such share (the link may be mistyped)", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "share unreadable", http.StatusInternalServerError)
			return
		}
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	})
}
