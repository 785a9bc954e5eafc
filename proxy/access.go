package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tickets are the launch tickets of the front end: random, kept in memory,
// short-lived and single-use. Random rather than signed, so that a
// redeemed one can simply be forgotten; a daemon restart voids the few in
// flight, and the front end asks again.
type tickets struct {
	mu    sync.Mutex
	m     map[string]ticket
	ttl   time.Duration
	now   func() time.Time
	sweep int // sweep expired tickets when the map reaches this size
}

type ticket struct {
	key     Key
	expires time.Time
}

func newTickets(ttl time.Duration, now func() time.Time) *tickets {
	return &tickets{m: map[string]ticket{}, ttl: ttl, now: now, sweep: 1024}
}

// issue returns a new ticket for k.
func (t *tickets) issue(k Key) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	s := base64.RawURLEncoding.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.m) >= t.sweep {
		for id, tk := range t.m {
			if now.After(tk.expires) {
				delete(t.m, id)
			}
		}
		t.sweep = max(1024, 2*len(t.m))
	}
	t.m[s] = ticket{key: k, expires: now.Add(t.ttl)}
	return s
}

// redeem returns the key of a valid ticket and forgets it: a second
// redeem of the same ticket fails. A refused ticket gets the reason, for
// the metrics: ticket-unknown (forged, or replayed) or ticket-expired.
func (t *tickets) redeem(s string) (k Key, refused string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tk, ok := t.m[s]
	if !ok {
		return Key{}, "ticket-unknown"
	}
	delete(t.m, s)
	if t.now().After(tk.expires) {
		return Key{}, "ticket-expired"
	}
	return tk.key, ""
}

// sessions sign and check the session cookie: course|student|expiry|mac,
// an HMAC-SHA256 under the site's key. Signed rather than kept, so that a
// daemon restart keeps students in their servers.
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

func (s sessions) mac(course, student, exp string) string {
	h := hmac.New(sha256.New, s.key)
	fmt.Fprintf(h, "nbh-session-v1|%s|%s|%s", course, student, exp)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// value returns a new session cookie value for k.
func (s sessions) value(k Key) string {
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return k.Course + "|" + k.Student + "|" + exp + "|" + s.mac(k.Course, k.Student, exp)
}

// verify returns the key of a well-signed, unexpired session value; a
// refused one gets the reason, for the metrics: session-forged or
// session-expired.
func (s sessions) verify(v string) (k Key, refused string) {
	parts := strings.Split(v, "|")
	if len(parts) != 4 || !hmac.Equal([]byte(parts[3]), []byte(s.mac(parts[0], parts[1], parts[2]))) {
		return Key{}, "session-forged"
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || !s.now().Before(time.Unix(exp, 0)) {
		return Key{}, "session-expired"
	}
	return Key{Course: parts[0], Student: parts[1]}, ""
}

// KeyFile is where the session key lives under the data directory.
func KeyFile(root string) string { return filepath.Join(root, "state", "proxy-session.key") }

// LoadKey reads the session key from path, creating it (32 random bytes,
// hex, mode 0600) when missing. Keeping it on disk keeps sessions valid
// across restarts; deleting it logs every student out.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		text := []byte(hex.EncodeToString(raw) + "\n")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadKey(path) // another process made it first
		}
		if err != nil {
			return nil, fmt.Errorf("create session key: %w", err)
		}
		_, err = f.Write(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("create session key %s: %w", path, err)
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("session key %s: want at least 64 hex digits (delete it to make a new one)", path)
	}
	return key, nil
}
