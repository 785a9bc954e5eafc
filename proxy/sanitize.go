package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
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
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return errors.New("dot segments are refused")
		}
	}
	for _, s := range [...]string{u.EscapedPath(), p} {
		if strings.Contains(s, "\\") || encodedEscape(s) {
			return errors.New("encoded slashes, dots and backslashes are refused")
		}
	}
	if strings.Contains(p, "\x00") {
		return errors.New("NUL is refused")
	}
	return nil
}

// encodedEscape reports whether s holds %2f, %5c, %2e or %00, in either
// case.
func encodedEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		switch strings.ToLower(s[i+1 : i+3]) {
		case "2f", "5c", "2e", "00":
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
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

// sameOrigin reports whether a request that can change something (any
// method but GET, HEAD and OPTIONS, and websockets) comes from a page of
// the site, scheme://host as browsers reach it, as its Origin (or
// Sec-Fetch-Site) says; a request with neither is not a browser's and
// passes. Jupyter skips its own XSRF check for requests that carry its
// token, as every forwarded one does: without this, a page of another site
// under the same registrable domain (the session cookie is SameSite=Lax,
// and such a site is "same-site") could post to a student's server. The
// scheme counts: http://hub.example.org is another origin than the https
// site, served by whoever is on the path of a plain-HTTP request.
func sameOrigin(r *http.Request, scheme string) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		if !isWebsocket(r) {
			return true
		}
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	return true
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

// serverHeaders are the response headers a student's server may send
// to the browser: what Jupyter (jupyter_server and Tornado) sends for its
// pages, files, API answers and downloads. The list is of what is let in,
// not what is kept out, because one origin serves every student and a
// header the browser applies to the whole origin — Service-Worker-Allowed
// (a worker controlling every prefix), Clear-Site-Data, Strict-Transport-
// Security, Alt-Svc, NEL and Report-To, Accept-CH, a Basic
// WWW-Authenticate prompt — would let one student act on every other
// student's pages in that browser; and new such headers keep coming.
// Access-Control-* go too: the front door serves one origin, and a page
// of another has no business reading a server's answers. Set-Cookie is
// filtered apart (see ownCookie).
var serverHeaders = headerSet(
	"Content-Type", "Content-Length", "Content-Encoding", "Content-Disposition", "Content-Language",
	"Content-Range", "Accept-Ranges",
	"Cache-Control", "Expires", "Pragma", "Age", "ETag", "Last-Modified", "Vary", "Date",
	"Location", "Allow", "Retry-After",
	// Jupyter's own restrictions of its pages; they narrow what a page
	// may do and never widen it (its "sandbox" CSP on /files/ keeps an
	// uploaded HTML file from scripting the origin).
	"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
	"Set-Cookie",
)

// upgradeHeaders are the headers of a websocket handshake's answer (101).
var upgradeHeaders = headerSet("Connection", "Upgrade",
	"Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")

func headerSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[http.CanonicalHeaderKey(n)] = true
	}
	return m
}

// keepServerHeaders drops from a server's answer every header not in
// serverHeaders (nor, in a websocket handshake's, upgradeHeaders).
func keepServerHeaders(h http.Header, upgrade bool) {
	for name := range h {
		if !serverHeaders[name] && !(upgrade && upgradeHeaders[name]) {
			delete(h, name)
		}
	}
}

// jupyterLoginCookie reports whether a Set-Cookie value is the login
// cookie a Jupyter server sets after a token-authenticated request
// ("username-HOST-PORT"): a credential for the server itself, which the
// browser does not need since the proxy authenticates every request.
func jupyterLoginCookie(setCookie string) bool {
	name, _, _ := strings.Cut(setCookie, "=")
	return strings.HasPrefix(strings.TrimSpace(name), "username-")
}

// ownCookie reports whether a Set-Cookie value of the server under base
// stays its own: host-only, with a path inside base, and not the front
// door's session cookie. One origin serves every student, so a server may
// not set cookies other servers' pages would get (at worst, overwrite a
// classmate's session in a browser that opened one of its pages).
func ownCookie(setCookie, base string) bool {
	c, err := http.ParseSetCookie(setCookie)
	if err != nil || c.Name == CookieName || c.Domain != "" {
		return false
	}
	return c.Path == "" || strings.HasPrefix(c.Path+"/", base)
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

// frameRedactor masks a secret in the data frames a server sends on a
// websocket (a kernel printing its environment, a terminal running env)
// with as many '*': the length is kept, so the framing stays right. Each
// frame's header is handed on whole, its payload as it arrives but for the
// last len(secret)-1 bytes, held until more of the frame comes, so that a
// secret split across reads is still found.
//
// A message sent in fragments (a first frame without FIN, continuation
// frames) is one stream of bytes a secret may straddle, so it is framed
// anew: each read of it goes out as a fragment of its own, but for the
// last len(secret)-1 bytes, held for the next fragment (RFC 6455 section
// 5.4 lets an intermediary change the fragmentation of a message when no
// extension is in use). Control frames between fragments pass at once.
//
// A compressed frame would hide the secret: rewrite strips
// permessage-deflate from upgrade requests, so that none is negotiated.
// Writes (the browser's frames) pass through.
//
// A frame goes out in one write, its header with its payload, and so do
// the whole frames that came in the same read after it (a kernel answers a
// cell with five): each write is a packet on the wire and a wake-up at the
// other end, and they were most of what the front door added to a cell's
// round trip. Nothing that has arrived waits for more: frames are joined
// only while the next is already read.
type frameRedactor struct {
	io.ReadWriteCloser // the server's side of the websocket
	r                  *bufio.Reader
	secret             []byte
	hdr                [14]byte
	left               uint64 // payload bytes of the current frame not read yet
	data               bool   // the current frame's payload is scanned
	from               int    // buf[from:] is the current frame's payload, the part to scan
	buf                []byte // read, not handed out yet
	ready              int    // buf[:ready] may be handed out
	err                error

	// A fragmented message, framed anew:
	inMessage bool   // one has begun and not ended
	frag      bool   // the current frame is one of its fragments
	final     bool   // the current frame is its last
	op        byte   // the opcode of the next fragment sent: the message's, then continuation
	tail      []byte // its last bytes read, held for the next fragment sent
}

func newFrameRedactor(conn io.ReadWriteCloser, secret string) *frameRedactor {
	return &frameRedactor{ReadWriteCloser: conn, r: bufio.NewReaderSize(conn, 4096), secret: []byte(secret),
		buf: make([]byte, 0, maxFrameHeader+4096+len(secret))}
}

func (f *frameRedactor) Read(p []byte) (int, error) {
	if f.fill(); f.ready == 0 {
		return 0, f.err
	}
	n := copy(p, f.buf[:f.ready])
	f.consume(n)
	return n, nil
}

// WriteTo hands the frames on from the redactor's own buffer: io.Copy,
// which the reverse proxy runs for each direction of a websocket, would
// otherwise hold a buffer of 32 KiB for the websocket's whole life.
func (f *frameRedactor) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if f.fill(); f.ready == 0 {
			if f.err == io.EOF {
				return total, nil
			}
			return total, f.err
		}
		n, err := w.Write(f.buf[:f.ready])
		total += int64(n)
		f.consume(n)
		if err != nil {
			return total, err
		}
	}
}

// ReadFrom passes the browser's frames on through a small buffer, for the
// same reason.
func (f *frameRedactor) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 4096)
	return io.CopyBuffer(f.ReadWriteCloser, struct{ io.Reader }{r}, buf)
}

func (f *frameRedactor) consume(n int) {
	f.ready -= n
	f.from = max(0, f.from-n)
	f.buf = f.buf[:copy(f.buf, f.buf[n:])]
}

// maxFrameHeader is the longest header of a frame from a server.
const maxFrameHeader = 10

// fill reads until some bytes are ready or an error is kept, and then on
// as long as more can be read without waiting (see more).
func (f *frameRedactor) fill() {
	for f.err == nil && (f.ready == 0 || f.more()) {
		switch {
		case f.frag && f.left == 0 && f.final:
			f.fragment(nil) // the message's end: its held bytes
		case f.left == 0 && f.ready < len(f.buf):
			f.ready = len(f.buf) // the end of a frame: its held bytes too
		case f.left == 0:
			f.err = f.header()
		case f.frag:
			chunk := f.buf[maxFrameHeader+len(f.tail) : cap(f.buf)] // see fragment
			n, err := f.r.Read(chunk[:min(uint64(len(chunk)), f.left)])
			f.left, f.err = f.left-uint64(n), err
			f.fragment(chunk[:n])
		default:
			if len(f.buf) == cap(f.buf) {
				f.buf = append(f.buf, 0)[:len(f.buf)] // only for a huge secret
			}
			n, err := f.r.Read(f.buf[len(f.buf):min(cap(f.buf), len(f.buf)+int(min(f.left, 1<<30)))])
			f.buf, f.left, f.err = f.buf[:len(f.buf)+n], f.left-uint64(n), err
			if !f.data {
				f.ready = len(f.buf)
				break
			}
			mask(f.buf[f.from:], f.secret)
			if f.left == 0 || err != nil {
				f.ready = len(f.buf)
			} else {
				f.ready = max(f.ready, len(f.buf)-(len(f.secret)-1))
			}
		}
	}
}

// more reports whether fill can add to the bytes ready without waiting
// for the server: the rest of the current frame as far as it is read, or
// the next frame when its header is read whole and it is not a fragment
// (fragment frames a message anew from an empty buf). A fragment's bytes
// go out as they come.
func (f *frameRedactor) more() bool {
	room := cap(f.buf) - len(f.buf)
	switch {
	case f.frag || room == 0:
		return false
	case f.left > 0:
		return f.r.Buffered() > 0
	case f.ready < len(f.buf):
		return true // the end of a frame, held bytes to let go
	case f.r.Buffered() < 2:
		return false
	}
	h, _ := f.r.Peek(2)
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4
	}
	whole := h[0]&0x80 != 0 && h[0]&0x0f != 0 // FIN, not a continuation
	return whole && f.r.Buffered() >= n && room > n
}

// fragment sends what a fragmented message has read so far, chunk just
// read after its held tail, as a fragment of its own, holding back a new
// tail; at the message's end (or a read error) all of it, with FIN.
func (f *frameRedactor) fragment(chunk []byte) {
	// buf: [room for a header][tail][chunk]
	b := f.buf[:cap(f.buf)]
	payload := b[maxFrameHeader : maxFrameHeader+len(f.tail)+len(chunk)]
	copy(payload, f.tail) // chunk was read in place after it
	mask(payload, f.secret)
	last := f.left == 0 && f.final || f.err != nil
	keep := 0
	if !last {
		keep = min(len(f.secret)-1, len(payload))
	}
	out := payload[:len(payload)-keep]
	f.tail = append(f.tail[:0], payload[len(out):]...)
	if len(out) == 0 && !last {
		return
	}
	h := frameHeader(f.hdr[:0], last, f.op, len(out))
	start := maxFrameHeader - len(h)
	copy(b[start:], h)
	f.buf = b[:copy(b, b[start:maxFrameHeader+len(out)])]
	f.ready, f.op = len(f.buf), 0
	if last {
		f.inMessage, f.frag = false, false
	}
}

// frameHeader appends the header of an unmasked frame (RFC 6455 section
// 5.2) to dst.
func frameHeader(dst []byte, fin bool, op byte, size int) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	switch {
	case size < 126:
		return append(dst, b0, byte(size))
	case size <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(size))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(size))
	}
}

// header reads a frame header (RFC 6455 section 5.2). It is handed on as it
// is (into buf, ahead of its payload), but for a fragment of a message,
// which fragment frames anew.
func (f *frameRedactor) header() error {
	if _, err := io.ReadFull(f.r, f.hdr[:2]); err != nil {
		return err
	}
	size, ext := uint64(f.hdr[1]&0x7f), 0
	switch size {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	masked := f.hdr[1]&0x80 != 0
	n := 2 + ext
	if masked {
		n += 4
	}
	if _, err := io.ReadFull(f.r, f.hdr[2:n]); err != nil {
		return err
	}
	switch ext {
	case 2:
		size = uint64(binary.BigEndian.Uint16(f.hdr[2:4]))
	case 8:
		size = binary.BigEndian.Uint64(f.hdr[2:10])
	}
	// Every frame in the clear: a server never masks, and RSV1 marks a
	// compressed data frame (control frames are never compressed).
	f.data = !masked && f.hdr[0]&0x40 == 0
	f.left = size
	fin, op := f.hdr[0]&0x80 != 0, f.hdr[0]&0x0f
	f.frag = false
	switch {
	case !f.data || op >= 0x8: // control frames may come between fragments
	case op != 0 && !fin: // a message's first fragment
		f.inMessage, f.frag, f.final, f.op, f.tail = true, true, false, op, f.tail[:0]
		return nil
	case op == 0 && f.inMessage: // a continuation
		f.frag, f.final = true, fin
		return nil
	}
	// Handed on with the payload that follows (see fill).
	f.buf = append(f.buf, f.hdr[:n]...)
	f.from = len(f.buf)
	return nil
}
