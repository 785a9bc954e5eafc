package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
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
// daemon restart keeps students in their servers. Every proxied request
// checks one, so the HMAC states are pooled.
type sessions struct {
	key  []byte
	ttl  time.Duration
	now  func() time.Time
	macs *sync.Pool
}

func newSessions(key []byte, ttl time.Duration, now func() time.Time) sessions {
	return sessions{key: key, ttl: ttl, now: now, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// mac appends the base64 MAC of a session to dst.
func (s sessions) mac(dst []byte, course, student, exp string) []byte {
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	for _, part := range [...]string{"nbh-session-v1|", course, "|", student, "|", exp} {
		_, _ = io.WriteString(h, part)
	}
	var sum [sha256.Size]byte
	dst = base64.RawURLEncoding.AppendEncode(dst, h.Sum(sum[:0]))
	s.macs.Put(h)
	return dst
}

// value returns a new session cookie value for k.
func (s sessions) value(k Key) string {
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	return k.Course + "|" + k.Student + "|" + exp + "|" + string(s.mac(nil, k.Course, k.Student, exp))
}

// verify returns the key of a well-signed, unexpired session value; a
// refused one gets the reason, for the metrics: session-forged or
// session-expired.
func (s sessions) verify(v string) (k Key, refused string) {
	course, rest, ok1 := strings.Cut(v, "|")
	student, rest, ok2 := strings.Cut(rest, "|")
	exp, mac, ok3 := strings.Cut(rest, "|")
	var buf [64]byte
	if !ok1 || !ok2 || !ok3 || !hmac.Equal([]byte(mac), s.mac(buf[:0], course, student, exp)) {
		return Key{}, "session-forged"
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !s.now().Before(time.Unix(e, 0)) {
		return Key{}, "session-expired"
	}
	return Key{Course: course, Student: student}, ""
}

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
