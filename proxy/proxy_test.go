package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/websocket"

	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
)

func TestLaunchSetsScopedCookieAndForwardsWithToken(t *testing.T) {
	for _, tc := range []struct {
		name       string
		secureOpt  bool
		wantSecure bool
	}{
		{"plain http", false, false},
		{"TLS ends in front", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, "/u/flot/alice/")
			f := newFront(t, Options{SecureCookies: tc.secureOpt})
			rt := be.route("flot", "alice")
			f.Routes().Set(rt)

			resp := f.get(t, f.Launch(rt)+"&keep=1")
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("launch: %s", resp.Status)
			}
			if loc := resp.Header.Get("Location"); loc != "/u/flot/alice/?keep=1" {
				t.Errorf("redirect to %q, want the ticket dropped and the rest kept", loc)
			}
			var sess *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == CookieName {
					sess = c
				}
			}
			if sess == nil || sess.Path != "/u/flot/alice/" || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure != tc.wantSecure {
				t.Fatalf("session cookie = %+v", sess)
			}
			if len(be.requests()) != 0 {
				t.Error("the launch itself reached the server")
			}

			resp = f.get(t, "/u/flot/alice/echo", "Cookie: "+CookieName+"="+sess.Value+"; other=1")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("forward: %s", resp.Status)
			}
			got := be.last(t)
			if got.Header.Get("Authorization") != "token "+secret {
				t.Errorf("server got Authorization %q, want its token", got.Header.Get("Authorization"))
			}
			if c := got.Header.Values("Cookie"); len(c) != 1 || c[0] != "other=1" {
				t.Errorf("server got cookies %q, want only other=1", c)
			}
			if got.Host != strings.TrimPrefix(f.URL, "http://") {
				t.Errorf("server got Host %q, want the browser's %q (Jupyter checks websocket origins against it)", got.Host, f.URL)
			}
		})
	}
}

func TestTicketsRefused(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	beBob := newBackend(t, "/u/flot/bob/")
	obs := &observer{}
	f := newFront(t, Options{Observer: obs})
	alice, bob := be.route("flot", "alice"), beBob.route("flot", "bob")
	f.Routes().Set(alice)
	f.Routes().Set(bob)

	for _, tc := range []struct {
		name   string
		path   func() string
		reason string // told to the Observer
	}{
		{"forged", func() string { return "/u/flot/alice/?" + TicketParam + "=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }, "ticket-unknown"},
		{"empty", func() string { return "/u/flot/alice/?" + TicketParam + "=" }, "ticket-unknown"},
		{"expired", func() string { l := f.Launch(alice); f.clock.add(61 * time.Second); return l }, "ticket-expired"},
		{"replayed", func() string {
			l := f.Launch(alice)
			if r := f.get(t, l); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use: %s", r.Status)
			}
			return l
		}, "ticket-unknown"},
		{"alice's on bob's prefix", func() string {
			l := f.Launch(alice)
			return strings.Replace(l, "/alice/", "/bob/", 1)
		}, "ticket-other-server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.get(t, tc.path())
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %s, want 403", resp.Status)
			}
			if got := obs.lastRejected(); got != tc.reason {
				t.Errorf("rejection counted as %q, want %q", got, tc.reason)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies set: %v", resp.Cookies())
			}
		})
	}
	if n := len(beBob.requests()); n != 0 {
		t.Errorf("bob's server got %d requests", n)
	}
}

func TestSessionRefused(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	beBob := newBackend(t, "/u/flot/bob/")
	obs := &observer{}
	f := newFront(t, Options{Observer: obs})
	alice, bob := be.route("flot", "alice"), beBob.route("flot", "bob")
	f.Routes().Set(alice)
	f.Routes().Set(bob)
	aliceCookie := f.login(t, alice)
	value := strings.TrimPrefix(aliceCookie, "Cookie: "+CookieName+"=")

	// The same cookie works on alice's prefix: the refusals below are
	// about where and what it is, not a broken cookie.
	if r := f.get(t, "/u/flot/alice/echo", aliceCookie); r.StatusCode != http.StatusOK {
		t.Fatalf("alice on her own prefix: %s", r.Status)
	}
	for _, tc := range []struct {
		name, path, cookie string
		reason             string // told to the Observer
	}{
		{"none", "/u/flot/bob/echo", "", "no-session"},
		{"alice's cookie on bob's prefix", "/u/flot/bob/echo", aliceCookie, "session-other-student"},
		{"alice's cookie on bob's websocket", "/u/flot/bob/ws", aliceCookie, "session-other-student"},
		{"alice's value renamed to bob", "/u/flot/bob/echo", "Cookie: " + CookieName + "=" + strings.Replace(value, "alice", "bob", 1), "session-forged"},
		{"expiry moved", "/u/flot/alice/echo", "Cookie: " + CookieName + "=" + moveExpiry(value), "session-forged"},
		{"garbage", "/u/flot/alice/echo", "Cookie: " + CookieName + "=flot|alice|99999999999|xyz", "session-forged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h []string
			if tc.cookie != "" {
				h = append(h, tc.cookie)
			}
			if r := f.get(t, tc.path, h...); r.StatusCode != http.StatusForbidden {
				t.Errorf("status %s, want 403", r.Status)
			}
			if got := obs.lastRejected(); got != tc.reason {
				t.Errorf("rejection counted as %q, want %q", got, tc.reason)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		f.clock.add(13 * time.Hour)
		defer f.clock.add(-13 * time.Hour)
		if r := f.get(t, "/u/flot/alice/echo", aliceCookie); r.StatusCode != http.StatusForbidden {
			t.Errorf("status %s, want 403", r.Status)
		}
		if got := obs.lastRejected(); got != "session-expired" {
			t.Errorf("rejection counted as %q, want session-expired", got)
		}
	})
	t.Run("login URL", func(t *testing.T) {
		f2 := newFront(t, Options{LoginURL: "https://lms.example.org/login", Routes: f.Routes()})
		r := f2.get(t, "/u/flot/bob/tree?x=1")
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "https://lms.example.org/login?next=%2Fu%2Fflot%2Fbob%2Ftree%3Fx%3D1" {
			t.Errorf("got %s to %q, want a redirect to the login URL", r.Status, r.Header.Get("Location"))
		}
	})
	for _, s := range beBob.requests() {
		t.Errorf("bob's server got %s %s", s.Method, s.Path)
	}
}

// moveExpiry pushes a session value's expiry a year on, keeping its MAC.
func moveExpiry(v string) string {
	p := strings.Split(v, "|")
	p[2] = fmt.Sprint(time.Now().Add(365 * 24 * time.Hour).Unix())
	return strings.Join(p, "|")
}

// TestPathEscapesRefused sends raw request lines (a Go client would clean
// them) through a real HTTP server: nothing that could leave a prefix
// reaches any server.
func TestPathEscapesRefused(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	beBob := newBackend(t, "/u/flot/bob/")
	f := newFront(t, Options{})
	alice := be.route("flot", "alice")
	f.Routes().Set(alice)
	f.Routes().Set(beBob.route("flot", "bob"))
	cookie := f.login(t, alice)
	for _, path := range []string{
		"/u/flot/alice/../bob/echo",
		"/u/flot/alice/./echo",
		"/u/flot/alice/%2e%2e/bob/echo",
		"/u/flot/alice/%2E%2E/bob/echo",
		"/u/flot/alice/.%2e/bob/echo",
		"/u/flot/alice/..%2fbob%2fecho",
		"/u/flot/alice/x%2F..%2F..%2Fbob/echo",
		"/u/flot/alice/%252e%252e/bob/echo",
		"/u/flot/alice/..%5cbob/echo",
		"/u/flot/alice/..\\bob/echo",
		"/u/flot/alice/%00/echo",
	} {
		t.Run(path, func(t *testing.T) {
			status := rawGet(t, f.URL, path, cookie)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
		})
	}
	for _, s := range append(be.requests(), beBob.requests()...) {
		t.Errorf("a server got %s %q (raw %q)", s.Method, s.Path, s.RawPath)
	}
	// Not a student path at all.
	for _, path := range []string{"/", "/u/", "/u/flot/", "/u/Flot/alice/", "/u/flot/-x/", "/api/status", "/0123/", "/99999/"} {
		if status := rawGet(t, f.URL, path, cookie); status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, status)
		}
	}
}

// rawGet sends "GET path" as written and returns the status code.
func rawGet(t *testing.T, base, path string, header ...string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n", path)
	for _, h := range header {
		fmt.Fprintf(conn, "%s\r\n", h)
	}
	fmt.Fprint(conn, "\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestHeaderTricks(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)

	resp := f.get(t, "/u/flot/alice/echo", cookie,
		"X-Forwarded-For: 6.6.6.6", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: https",
		"X-Forwarded-Prefix: /u/flot/bob/", "Forwarded: for=6.6.6.6;host=evil.example", "X-Real-IP: 6.6.6.6",
		"Authorization: token stolen", "Connection: keep-alive, X-Forwarded-For, Authorization",
		"Proxy-Authorization: Basic eDp5", "Te: trailers, deflate", "Keep-Alive: timeout=5")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %s", resp.Status)
	}
	h := be.last(t).Header
	want := map[string]string{
		"X-Forwarded-For":     "127.0.0.1",
		"X-Forwarded-Host":    strings.TrimPrefix(f.URL, "http://"),
		"X-Forwarded-Proto":   "http",
		"X-Forwarded-Prefix":  "",
		"Forwarded":           "",
		"X-Real-Ip":           "",
		"Authorization":       "token " + secret,
		"Proxy-Authorization": "",
		"Keep-Alive":          "",
		"Te":                  "trailers", // the one TE value a proxy passes on
	}
	for k, v := range want {
		if got := strings.Join(h.Values(k), ","); got != v {
			t.Errorf("server got %s %q, want %q", k, got, v)
		}
	}

	t.Run("a token guessed in the query", func(t *testing.T) {
		f.get(t, "/u/flot/alice/echo?token=guess&x=1", cookie)
		if q := be.last(t).Query; q != "x=1" {
			t.Errorf("server got query %q, want the token parameter dropped", q)
		}
	})
	t.Run("non-websocket upgrade", func(t *testing.T) {
		n := len(be.requests())
		r := f.get(t, "/u/flot/alice/echo", cookie, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__")
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("h2c upgrade: status %s, want 400", r.Status)
		}
		if len(be.requests()) != n {
			t.Error("the h2c upgrade reached the server")
		}
	})
}

// Jupyter does not check XSRF on requests that carry its token, as every
// forwarded one does: the front door refuses, itself, a request that can
// change something when it comes from a page of another origin (a sibling
// site of the same registrable domain gets SameSite=Lax cookies sent).
func TestCrossOriginRefused(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	obs := &observer{}
	f := newFront(t, Options{Observer: obs})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	self := f.URL
	for _, tc := range []struct {
		name, method string
		header       []string
		want         int
	}{
		{"POST from another site", http.MethodPost, []string{"Origin: https://students.example.org"}, http.StatusForbidden},
		{"POST with a null origin", http.MethodPost, []string{"Origin: null"}, http.StatusForbidden},
		{"DELETE, cross-site by fetch metadata", http.MethodDelete, []string{"Sec-Fetch-Site: same-site"}, http.StatusForbidden},
		{"websocket from another site", http.MethodGet, []string{"Origin: https://students.example.org", "Connection: Upgrade", "Upgrade: websocket",
			"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusForbidden},
		{"POST from the site's own page", http.MethodPost, []string{"Origin: " + self, "Sec-Fetch-Site: same-origin"}, http.StatusOK},
		{"POST by a script that is no browser", http.MethodPost, nil, http.StatusOK},
		{"GET from another site (a link)", http.MethodGet, []string{"Origin: https://students.example.org", "Sec-Fetch-Site: cross-site"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, f.URL+"/u/flot/alice/echo", nil)
			for _, h := range append(tc.header, cookie) {
				k, v, _ := strings.Cut(h, ": ")
				req.Header.Add(k, v)
			}
			n := len(be.requests())
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %s, want %d", resp.Status, tc.want)
			}
			if reached := len(be.requests()) > n; reached != (tc.want == http.StatusOK) {
				t.Errorf("reached the server: %v", reached)
			}
			if tc.want == http.StatusForbidden {
				if got := obs.lastRejected(); got != "cross-origin" {
					t.Errorf("rejection counted as %q", got)
				}
			}
		})
	}
}

// The Origin's scheme counts: http://host is not the https site (a page
// served over plain HTTP, by whoever is on that path).
func TestCrossOriginSchemeCounts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		scheme string // of the Origin sent
		want   int
	}{
		{"http page, https site", Options{Scheme: "https"}, "http", http.StatusForbidden},
		{"https page, https site", Options{Scheme: "https"}, "https", http.StatusOK},
		{"http page, TLS ends in front", Options{SecureCookies: true}, "http", http.StatusForbidden},
		{"https page, TLS ends in front", Options{SecureCookies: true}, "https", http.StatusOK},
		{"https page, http site", Options{}, "https", http.StatusForbidden},
		{"http page, http site", Options{}, "http", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t, "/u/flot/alice/")
			f := newFront(t, tc.opts)
			rt := be.route("flot", "alice")
			f.Routes().Set(rt)
			origin := tc.scheme + "://" + strings.TrimPrefix(f.URL, "http://")
			resp := f.at(t, http.MethodPost, "", "/u/flot/alice/echo", f.login(t, rt), "Origin: "+origin)
			if resp.StatusCode != tc.want {
				t.Errorf("POST with Origin %s: %s, want %d", origin, resp.Status, tc.want)
			}
		})
	}
}

// A server's cookies stay inside its prefix: all students share one
// origin, and a page of one server must not set what another's pages get.
func TestServerCookiesScopedToPrefix(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	resp := f.get(t, "/u/flot/alice/cookies", f.login(t, rt))
	if got := strings.Join(resp.Header.Values("Set-Cookie"), " | "); got != "_xsrf=1; Path=/u/flot/alice/ | mine=1 | sub=1; Path=/u/flot/alice/lab | trimmed=1; Path=/u/flot/alice" {
		t.Errorf("cookies passed: %s", got)
	}
}

func TestTokenNeverReachesTheBrowser(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)

	resp := f.get(t, "/u/flot/alice/leak", cookie)
	b := body(t, resp)
	for k, vs := range resp.Header {
		for _, v := range vs {
			if strings.Contains(v, secret) || strings.Contains(v, "token=") {
				t.Errorf("header %s: %q carries the token", k, v)
			}
		}
	}
	if strings.Contains(b, secret) {
		t.Errorf("body carries the token: %q", b)
	}
	if loc := resp.Header.Get("Location"); loc != "/u/flot/alice/tree?x=1" {
		t.Errorf("Location %q, want the token parameter dropped", loc)
	}
	var names []string
	for _, c := range resp.Cookies() {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "_xsrf" {
		t.Errorf("cookies set %v, want only _xsrf (not the server's login cookie)", names)
	}
}

func TestRedactorFindsSplitSecrets(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"none", "nothing to see here"},
		{"once", "a" + secret + "b"},
		{"at both ends", secret + "middle" + secret},
		{"adjacent", secret + secret},
		{"near miss", secret[:len(secret)-1] + "!" + secret},
		{"long", strings.Repeat("x", 200<<10) + secret + strings.Repeat("y", 100<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rd := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in)), iotest.HalfReader(strings.NewReader(tc.in))} {
				got, err := io.ReadAll(newRedactor(io.NopCloser(rd), secret))
				if err != nil {
					t.Fatal(err)
				}
				want := strings.ReplaceAll(tc.in, secret, strings.Repeat("*", len(secret)))
				if string(got) != want {
					t.Errorf("redacted %d bytes into %d, secret left: %v", len(tc.in), len(got), strings.Contains(string(got), secret))
				}
			}
		})
	}
}

// frame builds a websocket frame as a server sends it (unmasked): fin,
// opcode, rsv1 (compressed) and payload.
func frame(op byte, rsv1 bool, payload string) string {
	b := []byte{0x80 | op}
	if rsv1 {
		b[0] |= 0x40
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return string(b) + payload
}

// rwc is a server side of a websocket: reads from r, writes recorded.
type rwc struct {
	r       io.Reader
	written bytes.Buffer
}

func (c *rwc) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *rwc) Write(p []byte) (int, error) { return c.written.Write(p) }
func (c *rwc) Close() error                { return nil }

func TestFrameRedactorMasksEveryFrame(t *testing.T) {
	stars := strings.Repeat("*", len(secret))
	big := strings.Repeat("x", 70<<10)
	for _, tc := range []struct{ name, in, want string }{
		{"text", frame(1, false, "token "+secret+"!"), frame(1, false, "token "+stars+"!")},
		{"binary, 16-bit length, at the end", frame(2, false, strings.Repeat("y", 300)+secret), frame(2, false, strings.Repeat("y", 300)+stars)},
		{"64-bit length, across the buffer", frame(2, false, big[:4090]+secret+big), frame(2, false, big[:4090]+stars+big)},
		{"adjacent and near miss", frame(1, false, secret+secret+secret[1:]), frame(1, false, stars+stars+secret[1:])},
		{"several frames, a close", frame(1, false, secret) + frame(9, false, secret) + frame(1, false, "ok") + frame(8, false, "\x03\xe8"+secret),
			frame(1, false, stars) + frame(9, false, stars) + frame(1, false, "ok") + frame(8, false, "\x03\xe8"+stars)},
		{"no secret split over two frames", frame(0, false, secret[:10]) + frame(0, false, secret[10:]), frame(0, false, secret[:10]) + frame(0, false, secret[10:])},
		{"compressed: left alone (never negotiated)", frame(1, true, secret), frame(1, true, secret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rd := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in)), iotest.HalfReader(strings.NewReader(tc.in))} {
				conn := &rwc{r: rd}
				f := newFrameRedactor(conn, secret)
				got, err := io.ReadAll(f)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != tc.want {
					t.Errorf("%d bytes in, %d out; differ at %d", len(tc.in), len(got), firstDiff(string(got), tc.want))
				}
				if _, err := f.Write([]byte(secret)); err != nil || conn.written.String() != secret {
					t.Errorf("the browser's frames are changed: %q, %v", conn.written.String(), err)
				}
			}
			// As io.Copy runs it: WriteTo, and ReadFrom for the browser's side.
			var out bytes.Buffer
			conn := &rwc{r: iotest.HalfReader(strings.NewReader(tc.in))}
			f := newFrameRedactor(conn, secret)
			if _, err := io.Copy(&out, f); err != nil || out.String() != tc.want {
				t.Errorf("WriteTo: %d bytes out, %v", out.Len(), err)
			}
			if _, err := io.Copy(f, strings.NewReader(secret)); err != nil || conn.written.String() != secret {
				t.Errorf("ReadFrom: %q, %v", conn.written.String(), err)
			}
		})
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A server that sends its token on a websocket (a kernel printing its
// environment) reaches the browser masked, and a browser's offer of
// compression, which would hide it, never reaches the server.
func TestWebsocketFramesMasked(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	cfg, _ := websocket.NewConfig(strings.Replace(f.URL, "http", "ws", 1)+"/u/flot/alice/ws", f.URL)
	cfg.Header = http.Header{"Cookie": {strings.TrimPrefix(cookie, "Cookie: ")}, "Sec-Websocket-Extensions": {"permessage-deflate; client_max_window_bits"}}
	ws, err := cfg.DialContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	msg := "JUPYTER_TOKEN=" + secret + "\n"
	if err := websocket.Message.Send(ws, msg); err != nil { // the echo sends it back
		t.Fatal(err)
	}
	var got string
	if err := websocket.Message.Receive(ws, &got); err != nil {
		t.Fatal(err)
	}
	if want := "JUPYTER_TOKEN=" + strings.Repeat("*", len(secret)) + "\n"; got != want {
		t.Errorf("the browser got %q, want %q", got, want)
	}
	if ext := be.last(t).Header.Get("Sec-Websocket-Extensions"); ext != "" {
		t.Errorf("the server was offered %q", ext)
	}
}

func TestSpawnOnDemand(t *testing.T) {
	t.Run("a server that comes up in time is served at once", func(t *testing.T) {
		be := newBackend(t, "/u/flot/alice/")
		var spawns atomic.Int32
		f := newFront(t, Options{Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			spawns.Add(1)
			return be.route(c, s), nil
		})})
		cookie := f.login(t, Route{Key: Key{"flot", "alice"}, BasePath: "/u/flot/alice/"})
		if r := f.get(t, "/u/flot/alice/echo", cookie, "Sec-Fetch-Mode: navigate"); r.StatusCode != http.StatusOK {
			t.Fatalf("status %s", r.Status)
		}
		if r := f.get(t, "/u/flot/alice/echo", cookie); r.StatusCode != http.StatusOK {
			t.Fatalf("status %s", r.Status)
		}
		if n := spawns.Load(); n != 1 {
			t.Errorf("%d spawns, want 1", n)
		}
	})
	t.Run("a slow server gets the starting page, then is served", func(t *testing.T) {
		be := newBackend(t, "/u/flot/alice/")
		release := make(chan struct{})
		f := newFront(t, Options{StartWait: 20 * time.Millisecond, Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			<-release
			return be.route(c, s), nil
		})})
		cookie := f.login(t, Route{Key: Key{"flot", "alice"}, BasePath: "/u/flot/alice/"})
		r := f.get(t, "/u/flot/alice/tree", cookie, "Accept: text/html")
		if b := body(t, r); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(b, "Starting your server") ||
			!strings.Contains(b, `new EventSource("/u/flot/alice/tree?nbh-wait")`) {
			t.Fatalf("got %s %q, want the starting page, listening to its server's start", r.Status, b)
		}
		// The page's event stream says "ready" once the start has ended,
		// and not before: the first thing it can read after the release.
		events := f.get(t, "/u/flot/alice/tree?nbh-wait", cookie, "Accept: text/event-stream")
		if events.StatusCode != http.StatusOK || events.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("event stream: %s %s", events.Status, events.Header.Get("Content-Type"))
		}
		close(release)
		if line, err := bufio.NewReader(events.Body).ReadString('\n'); err != nil || line != "event: ready\n" {
			t.Fatalf("event stream said %q, %v; want ready", line, err)
		}
		if r := f.get(t, "/u/flot/alice/echo", cookie); r.StatusCode != http.StatusOK {
			t.Errorf("after ready: %s", r.Status)
		}
	})
	t.Run("a wait with no start running is ready at once, and only with a session", func(t *testing.T) {
		be := newBackend(t, "/u/flot/alice/")
		var spawns atomic.Int32
		f := newFront(t, Options{Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			spawns.Add(1)
			return be.route(c, s), nil
		})})
		cookie := f.login(t, Route{Key: Key{"flot", "alice"}, BasePath: "/u/flot/alice/"})
		if b := body(t, f.get(t, "/u/flot/alice/?nbh-wait", cookie)); b != "event: ready\ndata: \n\n" {
			t.Errorf("stream %q, want one ready event", b)
		}
		if n := spawns.Load(); n != 0 {
			t.Errorf("a wait started the server %d times: it is a script's request", n)
		}
		if r := f.get(t, "/u/flot/alice/?nbh-wait"); r.StatusCode != http.StatusForbidden {
			t.Errorf("without a session: %s, want 403", r.Status)
		}
	})
	t.Run("a server found down is started again, not a 502", func(t *testing.T) {
		dead := newBackend(t, "/u/flot/alice/")
		deadRoute := dead.route("flot", "alice")
		dead.Close()
		be := newBackend(t, "/u/flot/alice/")
		f := newFront(t, Options{Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			return be.route(c, s), nil
		})})
		f.Routes().Set(deadRoute)
		cookie := f.login(t, deadRoute)
		if r := f.get(t, "/u/flot/alice/echo", cookie, "Accept: text/html"); r.StatusCode != http.StatusOK {
			t.Fatalf("status %s, want the restarted server's answer", r.Status)
		}
		if rt, _ := f.Routes().Lookup(Key{"flot", "alice"}); rt != be.route("flot", "alice") {
			t.Errorf("route %v, want the new server", rt)
		}
	})
	t.Run("a server made again on another port is followed", func(t *testing.T) {
		old := newBackend(t, "/4242/")
		oldRoute := old.route("flot", "alice")
		old.Close()
		be := newBackend(t, "/4343/")
		f := newFront(t, Options{Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			return be.route(c, s), nil
		})})
		f.Routes().Set(oldRoute)
		cookie := f.login(t, oldRoute)
		r := f.get(t, "/4242/tree", cookie, "Accept: text/html")
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/4343/" {
			t.Fatalf("got %s to %q, want a redirect to the new prefix", r.Status, r.Header.Get("Location"))
		}
		if c := r.Cookies(); len(c) != 1 || c[0].Path != "/4343/" {
			t.Errorf("cookies %v, want a session for the new prefix", c)
		}
	})
	t.Run("scripts and websockets do not start a server", func(t *testing.T) {
		// An open tab reconnecting after its idle server was stopped must
		// not start it again: only a page load does.
		var spawns atomic.Int32
		f := newFront(t, Options{Spawner: spawnFunc(func(ctx context.Context, c, s string) (Route, error) {
			spawns.Add(1)
			return Route{}, errors.New("no")
		})})
		cookie := f.login(t, Route{Key: Key{"flot", "alice"}, BasePath: "/u/flot/alice/"})
		for _, h := range [][]string{
			{cookie, "Accept: application/json"},
			{cookie, "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="},
		} {
			if r := f.get(t, "/u/flot/alice/api/kernels", h...); r.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("%v: status %s, want 503", h, r.Status)
			}
		}
		if n := spawns.Load(); n != 0 {
			t.Errorf("%d spawns, want none", n)
		}
	})
	for _, tc := range []struct {
		name   string
		err    error
		status int
		text   string
	}{
		{"archived course", fmt.Errorf("spawn: %w", manifest.ErrArchived), http.StatusGone, "archived"},
		{"removed course", fmt.Errorf("spawn: %w", manifest.ErrUnknownCourse), http.StatusNotFound, "not (or no longer) offered"},
		{"engine trouble", errors.New("engine down"), http.StatusServiceUnavailable, "could not start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFront(t, Options{Spawner: spawnFunc(func(context.Context, string, string) (Route, error) { return Route{}, tc.err })})
			cookie := f.login(t, Route{Key: Key{"old", "alice"}, BasePath: "/u/old/alice/"})
			r := f.get(t, "/u/old/alice/tree", cookie, "Accept: text/html")
			if b := body(t, r); r.StatusCode != tc.status || !strings.Contains(b, tc.text) {
				t.Errorf("got %s %q, want %d saying %q", r.Status, b, tc.status, tc.text)
			}
		})
	}
}

func TestTrafficAndWebsockets(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	if _, ok := f.Traffic("flot", "alice"); ok {
		t.Error("traffic before any request")
	}
	f.get(t, "/u/flot/alice/echo", cookie)
	tr, ok := f.Traffic("flot", "alice")
	if !ok || !tr.Last.Equal(f.clock.now()) || tr.Websockets != 0 {
		t.Errorf("after a request: %+v", tr)
	}

	cfg, _ := websocket.NewConfig(strings.Replace(f.URL, "http", "ws", 1)+"/u/flot/alice/ws", f.URL)
	cfg.Header = http.Header{"Cookie": {strings.TrimPrefix(cookie, "Cookie: ")}}
	ws, err := cfg.DialContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ws, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q, %v", buf, err)
	}
	f.clock.add(time.Minute)
	opened := tr.Last
	if tr, _ := f.Traffic("flot", "alice"); tr.Websockets != 1 || !tr.Last.Equal(opened) {
		t.Errorf("with a websocket open: %+v, want 1 open since %v", tr, opened)
	}
	ws.Close()
	testenv.WaitFor(t, 10*time.Second, "the closed websocket counted", func() bool { tr, _ := f.Traffic("flot", "alice"); return tr.Websockets == 0 })
	if tr, _ := f.Traffic("flot", "alice"); !tr.Last.Equal(f.clock.now()) {
		t.Errorf("after the websocket closed: %+v, want its closing time as the last request", tr)
	}
}

// The Observer hears every answer by its status class (a websocket's when
// it closes), the websockets open, and the spawns on demand.
func TestObserverCounts(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	rt := be.route("flot", "alice")
	obs := &observer{}
	f := newFront(t, Options{Observer: obs, StartWait: time.Minute,
		Spawner: spawnFunc(func(context.Context, string, string) (Route, error) { return rt, nil })})
	cookie := f.login(t, rt) // 3xx, and a spawn on demand: no route yet
	if r := f.get(t, "/u/flot/alice/echo", cookie, "Accept: text/html"); r.StatusCode != http.StatusOK {
		t.Fatalf("alice's page: %s", r.Status)
	}
	f.get(t, "/u/flot/bob/echo")              // 4xx
	f.get(t, "/nowhere")                      // 4xx
	f.get(t, "/u/flot/alice/missing", cookie) // 4xx from the server
	cfg, _ := websocket.NewConfig(strings.Replace(f.URL, "http", "ws", 1)+"/u/flot/alice/ws", f.URL)
	cfg.Header = http.Header{"Cookie": {strings.TrimPrefix(cookie, "Cookie: ")}}
	ws, err := cfg.DialContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, n, _ := obs.counts(); n != 1 {
		t.Errorf("%d websockets counted open, want 1", n)
	}
	ws.Close()
	testenv.WaitFor(t, 10*time.Second, "the closed websocket counted as a 1xx", func() bool { req, n, _ := obs.counts(); return n == 0 && req["1xx"] == 1 })
	req, _, spawns := obs.counts()
	if want := map[string]int{"1xx": 1, "2xx": 1, "3xx": 1, "4xx": 3}; !maps.Equal(req, want) {
		t.Errorf("requests by class %v, want %v", req, want)
	}
	if !slices.Equal(spawns, []string{"ok"}) {
		t.Errorf("spawns %q, want one ok", spawns)
	}
}

func TestTableSyncKeepsRacedSpawns(t *testing.T) {
	tb := NewTable()
	a := Route{Key: Key{"c", "a"}, Host: "127.0.0.1:1", BasePath: "/u/c/a/"}
	b := Route{Key: Key{"c", "b"}, Host: "127.0.0.1:2", BasePath: "/2/"}
	gone := Route{Key: Key{"c", "g"}, Host: "127.0.0.1:3", BasePath: "/3/"}
	tb.Set(gone)
	observed := time.Now()
	time.Sleep(time.Millisecond)
	tb.Set(a) // spawned after the pass listed the containers
	tb.Sync([]Route{b}, observed)
	if _, ok := tb.Lookup(a.Key); !ok {
		t.Error("a spawn newer than the observation was dropped")
	}
	if _, ok := tb.Lookup(gone.Key); ok {
		t.Error("a route the pass did not see was kept")
	}
	if r, ok := tb.ByBase("/2/"); !ok || r != b {
		t.Errorf("ByBase = %v, %v", r, ok)
	}
	if _, ok := tb.ByBase("/3/"); ok {
		t.Error("the old base path still routes")
	}
	tb.Drop(Route{Key: b.Key, Host: "127.0.0.1:9", BasePath: "/2/"})
	if _, ok := tb.Lookup(b.Key); !ok {
		t.Error("Drop of an outdated route removed the current one")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	k1, err := LoadKey(path)
	if err != nil || len(k1) != 32 {
		t.Fatalf("LoadKey = %d bytes, %v", len(k1), err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if k2, err := LoadKey(path); err != nil || string(k2) != string(k1) {
		t.Errorf("reload: %v, same %v", err, string(k2) == string(k1))
	}
	os.WriteFile(path, []byte("abcd\n"), 0o600)
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("short key: %v, want an error naming the file", err)
	}
	if _, err := New(Options{Key: []byte("short")}); err == nil {
		t.Error("New accepted a short key")
	}
}

// TestUploadAndDownloadIntact streams 100 MB each way through the proxy.
func TestUploadAndDownloadIntact(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := strings.TrimPrefix(f.login(t, rt), "Cookie: ")
	const n = 100 << 20

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, f.URL+"/u/flot/alice/upload", io.LimitReader(zeros{}, n))
	req.ContentLength = n
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(t, resp); b != fmt.Sprint(n) {
		t.Errorf("server received %s bytes, want %d", b, n)
	}
	resp.Body.Close()

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, f.URL+fmt.Sprintf("/u/flot/alice/big?n=%d", n), nil)
	req.Header.Set("Cookie", cookie)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := make([]byte, 64<<10)
	for i := range want {
		want[i] = byte(i * 7)
	}
	got := make([]byte, 64<<10)
	total := 0
	for {
		k, err := io.ReadFull(resp.Body, got)
		if k > 0 && string(got[:k]) != string(want[:k]) {
			t.Fatalf("bytes differ at offset %d", total)
		}
		total += k
		if err != nil {
			break
		}
	}
	if total != n || resp.ContentLength != n {
		t.Errorf("downloaded %d bytes (Content-Length %d), want %d", total, resp.ContentLength, n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

var _ http.Handler = (*Proxy)(nil)

// A server's answer reaches the browser with the headers Jupyter sends and
// no other: one origin serves every student, and some headers act on the
// whole origin.
func TestServerHeadersAllowListed(t *testing.T) {
	sent := map[string]bool{ // header: passed on
		"Content-Type":                     true,
		"Content-Disposition":              true,
		"Cache-Control":                    true,
		"Etag":                             true,
		"Last-Modified":                    true,
		"Location":                         true,
		"Content-Security-Policy":          true,
		"X-Content-Type-Options":           true,
		"Service-Worker-Allowed":           false,
		"Clear-Site-Data":                  false,
		"Strict-Transport-Security":        false,
		"Alt-Svc":                          false,
		"Nel":                              false,
		"Report-To":                        false,
		"Accept-Ch":                        false,
		"Access-Control-Allow-Origin":      false,
		"Access-Control-Allow-Credentials": false,
		"Www-Authenticate":                 false,
		"Link":                             false,
		"Refresh":                          false,
		"Server":                           false,
		"X-Whatever":                       false,
	}
	rt := studentServer(t, "flot", "alice", map[string]http.HandlerFunc{
		"headers": func(w http.ResponseWriter, r *http.Request) {
			for k := range sent {
				w.Header().Set(k, "1")
			}
			w.WriteHeader(http.StatusFound)
		},
	})
	f := newFront(t, Options{})
	f.Routes().Set(rt)
	resp := f.get(t, "/u/flot/alice/headers", f.login(t, rt))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %s", resp.Status)
	}
	for k, want := range sent {
		if got := resp.Header.Get(k) != ""; got != want {
			t.Errorf("%s passed on: %v, want %v", k, got, want)
		}
	}
}

// A service worker controls at most its script's directory: a script
// request is served only inside a server's prefix, never for the bare
// prefix (/u/flot/alice is a script of /u/flot/, every classmate's).
func TestServiceWorkerScriptOnlyInsideThePrefix(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	for _, tc := range []struct {
		path   string
		header []string
		want   int
	}{
		{"/u/flot/alice", []string{"Service-Worker: script"}, http.StatusForbidden},
		{"/8888", []string{"Service-Worker: script"}, http.StatusForbidden},
		{"/u/flot/alice", nil, http.StatusMovedPermanently},
		{"/u/flot/alice/echo", []string{"Service-Worker: script"}, http.StatusOK},
	} {
		t.Run(tc.path+strings.Join(tc.header, ","), func(t *testing.T) {
			if got := f.get(t, tc.path, append(tc.header, cookie)...).StatusCode; got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// drip sends a request's head and the first part of a body announced
// longer, then the rest a byte every gap, until the answer comes or stop.
// It returns the answer's status, or 0 when none came within wait.
func drip(t *testing.T, addr, head string, body string, gap, wait time.Duration) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head+"Content-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range len(body) {
			if _, err := io.WriteString(c, body[i:i+1]); err != nil {
				return // answered and closed
			}
			time.Sleep(gap) // a slow client, on purpose
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A request the front door answers itself is read for ReadTimeout at
// most, body included: a body sent a byte at a time does not hold the
// connection. A student's own slow upload is not cut.
func TestSlowBodies(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	f := newFront(t, Options{ReadTimeout: 200 * time.Millisecond})
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	addr := strings.TrimPrefix(f.URL, "http://")
	slow := strings.Repeat("x", 100) // 100 × 50ms: 5s, far beyond ReadTimeout
	for _, tc := range []struct {
		name, head string
		want       int
	}{
		{"no session", "POST /u/flot/alice/upload HTTP/1.1\r\nHost: " + addr + "\r\n", http.StatusForbidden},
		{"cross-origin", "POST /u/flot/alice/upload HTTP/1.1\r\nHost: " + addr + "\r\n" + cookie + "\r\nOrigin: http://evil.example\r\n", http.StatusForbidden},
		{"no server there", "POST /u/flot/nobody/upload HTTP/1.1\r\nHost: " + addr + "\r\n", http.StatusForbidden},
		{"bad path", "POST /u/flot/alice/%2e%2e/x HTTP/1.1\r\nHost: " + addr + "\r\n", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := drip(t, addr, tc.head, slow, 50*time.Millisecond, 3*time.Second); got != tc.want {
				t.Errorf("answer %d, want %d before the body ends", got, tc.want)
			}
		})
	}
	t.Run("a student's slow upload", func(t *testing.T) {
		head := "POST /u/flot/alice/upload HTTP/1.1\r\nHost: " + addr + "\r\n" + cookie + "\r\n"
		if got := drip(t, addr, head, "0123456789", 50*time.Millisecond, 10*time.Second); got != http.StatusOK {
			t.Errorf("answer %d, want 200", got)
		}
		if got := be.last(t); got.Path != "/u/flot/alice/upload" {
			t.Errorf("the server's last request is %s", got.Path)
		}
	})
	t.Run("a websocket idle beyond ReadTimeout", func(t *testing.T) {
		cfg, _ := websocket.NewConfig(strings.Replace(f.URL, "http", "ws", 1)+"/u/flot/alice/ws", f.URL)
		cfg.Header = http.Header{"Cookie": {strings.TrimPrefix(cookie, "Cookie: ")}}
		ws, err := cfg.DialContext(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		time.Sleep(500 * time.Millisecond) // idle past ReadTimeout, on purpose
		if err := websocket.Message.Send(ws, "still there?"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != "still there?" {
			t.Errorf("echo %q, %v", got, err)
		}
	})
}
