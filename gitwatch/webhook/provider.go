package webhook

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// signature is how a provider signs its webhooks.
type signature struct {
	header string
	prefix string // before the hex HMAC
	hmac   bool   // false: the header holds the shared secret itself
}

var signatures = map[Provider]signature{
	GitHub:  {"X-Hub-Signature-256", "sha256=", true},
	GitLab:  {"X-Gitlab-Token", "", false},
	Gitea:   {"X-Gitea-Signature", "", true},
	Forgejo: {"X-Forgejo-Signature", "", true},
	Generic: {"X-Signature-256", "sha256=", true},
}

// Known reports whether p is a provider this package verifies.
func Known(p Provider) bool {
	_, ok := signatures[p]
	return ok
}

// maxTokenHeader bounds a GitLab token header.
const maxTokenHeader = 1024

// CheckHeader checks, before any body is read, that h carries provider p's
// signature header in its shape (a hex SHA-256 HMAC with its prefix, or a
// token of sane length). Only a request that passes is worth reading: an
// unsigned one is refused for the price of its headers. It returns an
// error matching ErrUnauthorized otherwise (the signature itself is
// checked by VerifyFor).
func CheckHeader(p Provider, h http.Header) error {
	sig, ok := signatures[p]
	if !ok {
		return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("unknown provider %q", p)}
	}
	v := strings.TrimSpace(h.Get(sig.header))
	switch {
	case v == "":
		return &Error{Status: http.StatusUnauthorized, Msg: "no " + sig.header + " header"}
	case !sig.hmac:
		if len(v) > maxTokenHeader {
			return &Error{Status: http.StatusUnauthorized, Msg: sig.header + " too long"}
		}
		return nil
	}
	hexSig, ok := strings.CutPrefix(v, sig.prefix)
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Msg: sig.header + " lacks the " + sig.prefix + " prefix"}
	}
	if b, err := hex.DecodeString(hexSig); err != nil || len(b) != sha256.Size {
		return &Error{Status: http.StatusUnauthorized, Msg: sig.header + " is not a hex SHA-256 HMAC"}
	}
	return nil
}

// VerifyFor checks body's signature by provider p's own header, in
// constant time. The headers of other forges are ignored: a plaintext
// X-Gitlab-Token sent to the GitHub endpoint is no signature of the body.
func VerifyFor(p Provider, h http.Header, body, secret []byte) error {
	if len(secret) == 0 {
		return &Error{Status: http.StatusUnauthorized, Msg: "no secret configured: every webhook is refused"}
	}
	if err := CheckHeader(p, h); err != nil {
		return err
	}
	sig := signatures[p]
	v := h.Get(sig.header)
	if sig.hmac {
		return checkHMAC(v, sig.prefix, body, secret)
	}
	// Compare digests, so that the time taken says nothing of the
	// secret's length either.
	got, want := sha256.Sum256([]byte(strings.TrimSpace(v))), sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return &Error{Status: http.StatusUnauthorized, Msg: sig.header + " does not match"}
	}
	return nil
}

// Replays remembers the webhooks verified lately, so that a signed request
// captured and sent again is refused. A delivery is known by its provider
// and the digest of its body — not by a delivery-ID header, which no
// signature covers. Memory is bounded: at most max deliveries, each for
// at most ttl.
type Replays struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	seen  map[[sha256.Size]byte]time.Time
	order []delivery // oldest first
}

type delivery struct {
	key [sha256.Size]byte
	at  time.Time
}

// NewReplays returns a memory of max deliveries for ttl.
func NewReplays(ttl time.Duration, max int) *Replays {
	return &Replays{ttl: ttl, max: max, seen: map[[sha256.Size]byte]time.Time{}}
}

// Seen records the delivery of body by p at now and reports whether it was
// recorded already, less than ttl ago.
func (r *Replays) Seen(p Provider, body []byte, now time.Time) bool {
	h := sha256.New()
	h.Write([]byte(p))
	h.Write([]byte{0})
	h.Write(body)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.order) > 0 && (now.Sub(r.order[0].at) >= r.ttl || len(r.order) >= r.max) {
		old := r.order[0]
		if r.seen[old.key] == old.at {
			delete(r.seen, old.key)
		}
		r.order = r.order[1:]
	}
	if at, ok := r.seen[k]; ok && now.Sub(at) < r.ttl {
		return true
	}
	r.seen[k] = now
	r.order = append(r.order, delivery{k, now})
	return false
}
