package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// checkPath refuses a request path that could leave the prefix it is
// routed by once a server or a second decoder reads it: dot segments
// (literal or percent-encoded), encoded slashes and backslashes, and any
// backslash or NUL. The proxy never cleans a path itself: a cleaned path
// would be routed by one reading and served by another.
func checkPath(u *url.URL) error {
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		return errors.New("path must start with /")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New("dot segments are refused")
		}
	}
	lower := strings.ToLower(u.EscapedPath() + "\x00" + p)
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00", "\\"} {
		if strings.Contains(lower, bad) {
			return errors.New("encoded slashes, dots and backslashes are refused")
		}
	}
	if strings.Contains(p, "\x00") {
		return errors.New("NUL is refused")
	}
	return nil
}

// stripCookie removes the cookies named name from a Cookie header value,
// leaving the others byte for byte.
func stripCookie(header []string, name string) []string {
	var out []string
	for _, h := range header {
		var kept []string
		for part := range strings.SplitSeq(h, ";") {
			n, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if n != name && strings.TrimSpace(part) != "" {
				kept = append(kept, strings.TrimSpace(part))
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	return out
}

// stripForwarded removes what a client may send to pass for a proxy.
func stripForwarded(h http.Header) {
	for name := range h {
		if strings.HasPrefix(name, "X-Forwarded-") {
			h.Del(name)
		}
	}
	h.Del("Forwarded")
	h.Del("X-Real-Ip")
	h.Del("X-Original-Url")
	h.Del("X-Rewrite-Url")
}

// isWebsocket reports whether r asks for a websocket upgrade.
func isWebsocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// jupyterLoginCookie reports whether a Set-Cookie value is the login
// cookie a Jupyter server sets after a token-authenticated request
// ("username-HOST-PORT"): a credential for the server itself, which the
// browser does not need since the proxy authenticates every request.
func jupyterLoginCookie(setCookie string) bool {
	name, _, _ := strings.Cut(setCookie, "=")
	return strings.HasPrefix(strings.TrimSpace(name), "username-")
}

// redactHeaders replaces secret in every response header value, and drops
// a token= query parameter from Location.
func redactHeaders(h http.Header, secret string) {
	for name, vs := range h {
		for i, v := range vs {
			if secret != "" && strings.Contains(v, secret) {
				vs[i] = strings.ReplaceAll(v, secret, strings.Repeat("*", len(secret)))
			}
		}
		h[name] = vs
	}
	if loc := h.Get("Location"); strings.Contains(loc, "token=") {
		if u, err := url.Parse(loc); err == nil {
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			h.Set("Location", u.String())
		}
	}
}

// redactor streams a body with every occurrence of secret replaced by as
// many '*': the length is kept (Content-Length stays right), and a secret
// split across reads is still found, since the last len(secret)-1 bytes
// are held back until more arrive.
type redactor struct {
	body   io.ReadCloser
	secret []byte
	buf    []byte // read and redacted, not handed out yet
	ready  int    // buf[:ready] may be handed out
	err    error
}

func newRedactor(body io.ReadCloser, secret string) *redactor {
	return &redactor{body: body, secret: []byte(secret), buf: (*buffers.Get().(*[]byte))[:0]}
}

func (r *redactor) Read(p []byte) (int, error) {
	if r.buf == nil {
		return 0, errors.New("read after close")
	}
	for r.ready == 0 && r.err == nil {
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, 0)[:len(r.buf)] // grow; only when secret is huge
		}
		n, err := r.body.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		r.err = err
		mask(r.buf, r.secret)
		if err != nil {
			r.ready = len(r.buf)
		} else {
			r.ready = max(0, len(r.buf)-(len(r.secret)-1))
		}
	}
	n := copy(p, r.buf[:r.ready])
	r.ready -= n
	m := copy(r.buf, r.buf[n:])
	r.buf = r.buf[:m]
	if n == 0 && r.err != nil {
		return 0, r.err
	}
	return n, nil
}

// Close closes the body and gives the buffer back.
func (r *redactor) Close() error {
	if r.buf != nil && cap(r.buf) == 64<<10 {
		b := r.buf[:cap(r.buf)]
		buffers.Put(&b)
	}
	r.buf = nil
	return r.body.Close()
}

// mask overwrites every occurrence of secret in b with '*'.
func mask(b, secret []byte) {
	if len(secret) == 0 {
		return
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], secret)
		if i < 0 {
			return
		}
		for j := range secret {
			b[off+i+j] = '*'
		}
		off += i + len(secret)
	}
}
