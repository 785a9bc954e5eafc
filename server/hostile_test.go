package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/gitwatch/webhook"
	"github.com/nbhosting/nbh-sync/server"
)

func TestSpawnUIDAndStrictJSON(t *testing.T) {
	ts := newServer(t, fakeBackend(&calls{}), nil)
	bearer := "Bearer " + token
	tests := []struct {
		name, body string
		code       int
		contains   string
	}{
		{"uid ok", `{"course":"a","student":"b","uid":1001}`, 200, `"created"`},
		{"uid -1", `{"course":"a","student":"b","uid":-1}`, 400, `uid -1`},
		{"uid 0", `{"course":"a","student":"b","uid":0}`, 400, `root`},
		{"uid too big", `{"course":"a","student":"b","uid":4294967296}`, 400, `uid`},
		{"trailing data", `{"course":"a","student":"b"} {"course":"c"}`, 400, `after the JSON value`},
		{"trailing garbage", `{"course":"a","student":"b"}x`, 400, `bad JSON`},
		{"duplicate key", `{"course":"a","student":"b","course":"c"}`, 400, `duplicate key \"course\"`},
		{"trailing space", "{\"course\":\"a\",\"student\":\"b\"}\n ", 200, `"created"`},
		{"a key twice, in two cases", `{"course":"a","student":"zed","STUDENT":"bob"}`, 400,
			`unknown field \"STUDENT\" (field names are case-sensitive: want \"student\")`},
		{"a key in another case", `{"Course":"a","student":"b"}`, 400, `unknown field \"Course\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := do(t, ts, req{"POST", "/api/spawn", tt.body, bearer})
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("%d %s, want %d containing %q", code, body, tt.code, tt.contains)
			}
		})
	}
	code, _, body := do(t, ts, req{"POST", "/api/sync", `{"course":"a","kinds":["pull"],"kinds":["rebuild"]}`, bearer})
	if code != 400 || !strings.Contains(body, "duplicate key") {
		t.Errorf("sync with a duplicate key: %d %s", code, body)
	}
	code, _, body = do(t, ts, req{"POST", "/api/sync", `{"course":"a","KINDS":["rebuild"]}`, bearer})
	if code != 400 || !strings.Contains(body, `unknown field \"KINDS\"`) {
		t.Errorf("sync with a key in another case: %d %s", code, body)
	}
}

// serve runs a server on a real listener (for raw connections).
func serve(t *testing.T, cfg server.Config) string {
	t.Helper()
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// rawRequest sends head and a body cut short, then reads the answer.
func rawRequest(t *testing.T, addr, head, partial string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head+partial); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A body that never comes is refused without naming this host's addresses.
func TestSlowBodyAnswerNamesNoAddress(t *testing.T) {
	addr := serve(t, server.Config{Backend: fakeBackend(&calls{}), Token: token, BodyReadTimeout: 300 * time.Millisecond,
		Hooks: server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
			return api.SyncResult{}, nil
		})})
	host, port, _ := net.SplitHostPort(addr)
	for _, path := range []string{"/api/spawn", "/hooks/github"} {
		head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token +
			"\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
		code, body := rawRequest(t, addr, head, `{"course":`)
		if code != http.StatusBadRequest {
			t.Errorf("%s: slow body answered %d %s, want 400", path, code, body)
		}
		for _, leak := range []string{host, port, "tcp", "->"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the answer to a slow body shows %q: %s", path, leak, body)
			}
		}
	}
}

// webhookHeaders is what the daemon wires: gitwatch/webhook's check of the
// path's provider's signature header.
func webhookHeaders(provider string, h http.Header) error {
	if !webhook.Known(webhook.Provider(provider)) {
		return fmt.Errorf("%w: %s", server.ErrUnknownProvider, provider)
	}
	return webhook.CheckHeader(webhook.Provider(provider), h)
}

// filler is an endless body that costs the sender no memory.
type filler struct{ left int }

func (f *filler) Read(p []byte) (int, error) {
	if f.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), f.left)
	for i := range n {
		p[i] = 'x'
	}
	f.left -= n
	return n, nil
}

// rss is the process's resident memory, from /proc.
func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// A flood of big webhooks costs bounded memory: unsigned ones are refused
// on their headers, and only MaxHookReads bodies are read at once.
func TestHookFloodMemoryBounded(t *testing.T) {
	var verified atomic.Int64
	hooks := server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
		verified.Add(1)
		return api.SyncResult{}, errors.New("signature does not match")
	})
	s, err := server.New(server.Config{Backend: fakeBackend(&calls{}), Hooks: hooks, HookHeaders: webhookHeaders})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	const n, size = 50, 5 << 20
	for _, tc := range []struct {
		name   string
		header string
		limit  int64 // RSS growth allowed
	}{
		{"unsigned", "", 32 << 20},
		{"well-formed but wrong signature", "sha256=" + strings.Repeat("ab", 32), 96 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			base := rss(t)
			var peak atomic.Int64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if r := rss(t); r > peak.Load() {
						peak.Store(r)
					}
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}()
			codes := map[int]int{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					r, _ := http.NewRequestWithContext(t.Context(), "POST", ts.URL+"/hooks/github", &filler{left: size})
					r.ContentLength = size
					if tc.header != "" {
						r.Header.Set("X-Hub-Signature-256", tc.header)
					}
					resp, err := ts.Client().Do(r)
					code := -1 // refused before the body was sent whole
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				})
			}
			wg.Wait()
			close(stop)
			<-sampled
			grew := peak.Load() - base
			t.Logf("%d × %d MiB %s webhooks: RSS %d → peak %d MiB (+%d MiB); answers %v; bodies verified %d",
				n, size>>20, tc.name, base>>20, peak.Load()>>20, grew>>20, codes, verified.Load())
			if grew > tc.limit*memScale {
				t.Errorf("RSS grew by %d MiB, want ≤ %d MiB", grew>>20, tc.limit*memScale>>20)
			}
			if codes[http.StatusAccepted] > 0 {
				t.Errorf("a webhook was accepted: %v", codes)
			}
		})
	}
	if verified.Load() > n {
		t.Errorf("%d bodies verified, want only well-formed ones", verified.Load())
	}
}

// Beyond MaxHookReads bodies at once, a webhook is answered 503 at once.
func TestHookReadsCapped(t *testing.T) {
	hooks := server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
		return api.SyncResult{}, nil
	})
	// Generous bounds: the first request must still hold its slot when a
	// starved machine gets round to reading it (10 s once was not).
	addr := serve(t, server.Config{Backend: fakeBackend(&calls{}), Hooks: hooks, HookHeaders: webhookHeaders, MaxHookReads: 1,
		BodyReadTimeout: time.Minute})
	head := "POST /hooks/github HTTP/1.1\r\nHost: " + addr + "\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) +
		"\r\nContent-Length: 100\r\n\r\n"
	// The first request holds the only slot with a body that trickles.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head+"{"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, body := rawRequest(t, addr, strings.Replace(head, "Content-Length: 100", "Content-Length: 2", 1), "{}")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a second webhook while one body is read: %d %s, want 503", code, body)
		}
		time.Sleep(10 * time.Millisecond) // the first request may not have reached its read yet
	}
}

// One source sending slow bodies cannot hold every webhook slot: the
// others' webhooks still get read.
func TestHookSlotsPerSource(t *testing.T) {
	hooks := server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
		return api.SyncResult{}, nil
	})
	addr := serve(t, server.Config{Backend: fakeBackend(&calls{}), Hooks: hooks, HookHeaders: webhookHeaders, BodyReadTimeout: time.Minute})
	head := "POST /hooks/github HTTP/1.1\r\nHost: " + addr + "\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n"
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		return c
	}
	send := func(from, extra string) int {
		c := dial(from)
		if _, err := io.WriteString(c, head+extra+"Content-Length: 2\r\n\r\n{}"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The attacker holds as many slots as it can get, each with a body
	// that never comes, and fills them: a webhook of its own is then
	// refused.
	for range server.DefaultHookReads {
		if _, err := io.WriteString(dial("127.0.0.2"), head+"Content-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
	}
	for send("127.0.0.2", "") != http.StatusServiceUnavailable {
		time.Sleep(10 * time.Millisecond) // the slow ones may not have reached their read yet
	}
	for _, tc := range []struct{ name, from, extra string }{
		{"another address", "127.0.0.3", ""},
		{"another client of the proxy in front", "127.0.0.2", "X-Forwarded-For: 198.51.100.7\r\n"},
	} {
		if code := send(tc.from, tc.extra); code != http.StatusAccepted {
			t.Errorf("%s: webhook answered %d, want 202", tc.name, code)
		}
	}
}

// A webhook body is read within HookReadTimeout, shorter than the API's
// BodyReadTimeout: a slow one gives its slot back soon.
func TestHookReadTimeout(t *testing.T) {
	hooks := server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
		return api.SyncResult{}, nil
	})
	addr := serve(t, server.Config{Backend: fakeBackend(&calls{}), Hooks: hooks, HookHeaders: webhookHeaders,
		BodyReadTimeout: time.Minute, HookReadTimeout: 300 * time.Millisecond, MaxHookReads: 1})
	head := "POST /hooks/github HTTP/1.1\r\nHost: " + addr + "\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\n"
	if code, body := rawRequest(t, addr, head+"Content-Length: 100\r\n\r\n", "{"); code != http.StatusBadRequest {
		t.Errorf("a slow webhook body: %d %s, want 400", code, body)
	}
	if code, body := rawRequest(t, addr, head+"Content-Length: 2\r\n\r\n", "{}"); code != http.StatusAccepted {
		t.Errorf("the next webhook: %d %s, want 202", code, body)
	}
}

// The unauthenticated GETs answer only to localhost, IP addresses and the
// names allowed; webhooks and mutations are not held to it.
func TestHostAllowList(t *testing.T) {
	hooks := server.HookFunc(func(context.Context, string, http.Header, []byte) (api.SyncResult, error) {
		return api.SyncResult{}, nil
	})
	s, err := server.New(server.Config{Backend: fakeBackend(&calls{}), Hooks: hooks, Token: token,
		AllowedHosts: []string{"0.0.0.0:8787", "nbh.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		method, path, host string
		code               int
	}{
		{"GET", "/api/status", "localhost:8787", 200},
		{"GET", "/api/status", "127.0.0.1:8787", 200},
		{"GET", "/api/status", "[::1]:8787", 200},
		{"GET", "/api/plan", "10.1.2.3", 200},
		{"GET", "/api/status", "NBH.example.org", 200},
		{"GET", "/api/status", "attacker.example.com", 403},
		{"GET", "/api/plan", "rebind.attacker.example.com:8787", 403},
		{"GET", "/", "attacker.example.com", 403},
		{"GET", "/metrics", "attacker.example.com", 403},
		{"GET", "/healthz", "localhost.attacker.example.com", 403},
		{"POST", "/hooks/github", "public.example.org", 202},
		{"POST", "/api/sync", "public.example.org", 202},
	} {
		r, _ := http.NewRequestWithContext(t.Context(), tc.method, ts.URL+tc.path, strings.NewReader("{}"))
		r.Host = tc.host
		if tc.method == "POST" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s Host %s: %d %s, want %d", tc.method, tc.path, tc.host, resp.StatusCode, b, tc.code)
		}
	}
}
