package proxy

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// secret is the Jupyter token of the fake servers.
const secret = "f00dfacecafe5ecre7f00dfacecafe5e"

var testKey = []byte("0123456789abcdef0123456789abcdef")

// seen is what a fake server received.
type seen struct {
	Method, Path, RawPath, Host, Query string
	Header                             http.Header
}

// backend is a fake student server under base: it records each request and
// serves a few endpoints (echo, a leak of its token, a websocket echo,
// large bodies).
type backend struct {
	*httptest.Server
	base string
	mu   sync.Mutex
	got  []seen
}

func newBackend(t *testing.T, base string) *backend {
	t.Helper()
	b := &backend{base: base}
	mux := http.NewServeMux()
	mux.HandleFunc(base+"echo", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path})
	})
	mux.HandleFunc(base+"leak", func(w http.ResponseWriter, r *http.Request) {
		// Everything a careless server could do with its token.
		h := w.Header()
		h.Set("Location", base+"tree?token="+secret+"&x=1")
		h.Set("X-Debug", "token is "+secret)
		h.Add("Set-Cookie", "username-127-0-0-1-8888=\"2|1:0|secret\"; Path="+base+"; HttpOnly")
		h.Add("Set-Cookie", "_xsrf=2|abc; Path="+base)
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, `<script>var token = "`+secret+`";</script>`)
	})
	mux.HandleFunc(base+"cookies", func(w http.ResponseWriter, r *http.Request) {
		// A server setting cookies inside its prefix and outside it.
		for _, c := range []string{"_xsrf=1; Path=" + base, "mine=1", "sub=1; Path=" + base + "lab", "trimmed=1; Path=" + strings.TrimSuffix(base, "/"),
			"wide=1; Path=/", "sibling=1; Path=" + strings.TrimSuffix(base, "/") + "x/", "classmate=1; Path=/u/flot/bob/",
			"nbh-session=forged; Path=" + base, "parent=1; Domain=example.org; Path=" + base, "bad name=1"} {
			w.Header().Add("Set-Cookie", c)
		}
	})
	mux.HandleFunc(base+"big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.HandleFunc(base+"upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, strconv.FormatInt(n, 10))
	})
	mux.Handle(base+"ws", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.got = append(b.got, seen{r.Method, r.URL.Path, r.URL.RawPath, r.Host, r.URL.RawQuery, r.Header.Clone()})
		b.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) route(course, student string) Route {
	u, _ := url.Parse(b.URL)
	port, _ := strconv.Atoi(u.Port())
	return Route{Key: Key{course, student}, Host: u.Host, BasePath: b.base, Port: port}
}

func (b *backend) requests() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.got...)
}

func (b *backend) last(t *testing.T) seen {
	t.Helper()
	got := b.requests()
	if len(got) == 0 {
		t.Fatal("the server got no request")
	}
	return got[len(got)-1]
}

// tokens is a Tokens of one token for every server.
type tokens string

func (s tokens) TokenFor(string, string) string { return string(s) }

// spawnFunc adapts a function to Spawner.
type spawnFunc func(ctx context.Context, course, student string) (Route, error)

func (f spawnFunc) Spawn(ctx context.Context, c, s string) (Route, error) { return f(ctx, c, s) }

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// front is a proxy under test behind a real HTTP server.
type front struct {
	*Proxy
	*httptest.Server
	clock *clock
}

func newFront(t *testing.T, opts Options) *front {
	t.Helper()
	c := &clock{t: time.Now()}
	if opts.Key == nil {
		opts.Key = testKey
	}
	if opts.Now == nil {
		opts.Now = c.now
	}
	if opts.Tokens == nil {
		opts.Tokens = tokens(secret)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(p)
	t.Cleanup(s.Close)
	return &front{Proxy: p, Server: s, clock: c}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get sends a GET of path with header lines ("Name: value").
func (f *front) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	return f.at(t, http.MethodGet, "", path, header...)
}

// at sends a request for path to host (the Host header; the server's
// own when empty) with header lines ("Name: value").
func (f *front) at(t *testing.T, method, host, path string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, h := range header {
		if k, v, ok := strings.Cut(h, ": "); ok {
			req.Header.Add(k, v)
		}
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// login launches a session for r's server and returns its cookie header.
func (f *front) login(t *testing.T, r Route) string {
	t.Helper()
	resp := f.get(t, f.Launch(r))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("launch: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return "Cookie: " + c.Name + "=" + c.Value
		}
	}
	t.Fatal("launch set no session cookie")
	return ""
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// observer records what the proxy tells its Observer.
type observer struct {
	mu         sync.Mutex
	requests   map[string]int
	websockets int
	spawns     []string
	rejected   []string
}

func (o *observer) FrontDoorRequest(class string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.requests == nil {
		o.requests = map[string]int{}
	}
	o.requests[class]++
}

func (o *observer) FrontDoorWebsockets(delta int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.websockets += delta
}

func (o *observer) FrontDoorSpawn(result string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.spawns = append(o.spawns, result)
}

func (o *observer) FrontDoorRejected(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rejected = append(o.rejected, reason)
}

// lastRejected returns the last reason told, and forgets them all.
func (o *observer) lastRejected() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	defer func() { o.rejected = nil }()
	if len(o.rejected) == 0 {
		return ""
	}
	return o.rejected[len(o.rejected)-1]
}

func (o *observer) counts() (requests map[string]int, websockets int, spawns []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.requests), o.websockets, slices.Clone(o.spawns)
}
