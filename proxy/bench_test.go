package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// BenchmarkForwardSmall is one small proxied request (session check, token
// added, body redacted), for regressions; bench/frontdoor has the figures
// beside direct access.
func BenchmarkForwardSmall(b *testing.B) {
	t := &testing.T{}
	be := newBackend(t, "/u/flot/alice/")
	defer be.Close()
	f := newFront(t, Options{})
	defer f.Server.Close()
	rt := be.route("flot", "alice")
	f.Routes().Set(rt)
	resp, err := noRedirect.Get(f.URL + f.Launch(rt))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	c := resp.Cookies()[0]
	client := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/u/flot/alice/echo", nil)
		req.AddCookie(c)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// BenchmarkWebsocketCell is a cell's round trip over a kernel's websocket:
// one frame from the browser, answered by the five a kernel sends for a
// cell (status busy, execute_input, execute_result, status idle,
// execute_reply), each a write of its own as Jupyter makes them; the
// front door masks the token in every frame. "bare" is a bare
// httputil.ReverseProxy to the same server: the floor of a Go proxy.
func BenchmarkWebsocketCell(b *testing.B) {
	t := &testing.T{}
	reply := []byte(`{"header":{"msg_id":"` + strings.Repeat("0", 32) + `","msg_type":"status","username":"jovyan","session":"` +
		strings.Repeat("1", 32) + `","date":"2026-12-01T10:00:00.000000Z","version":"5.3"},"parent_header":{},"metadata":{},` +
		`"content":{"execution_state":"busy"},"buffers":[],"channel":"iopub"}`)
	kernel := httptest.NewServer(websocket.Handler(func(c *websocket.Conn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			for range 5 {
				if _, err := c.Write(reply); err != nil {
					return
				}
			}
		}
	}))
	defer kernel.Close()
	f := newFront(t, Options{})
	defer f.Server.Close()
	u, _ := url.Parse(kernel.URL)
	rt := Route{Key: Key{"flot", "alice"}, Host: u.Host, BasePath: "/u/flot/alice/"}
	f.Routes().Set(rt)
	resp, err := noRedirect.Get(f.URL + f.Launch(rt))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Cookies()[0]
	bare := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	defer bare.Close()

	// The three ways alternate within each iteration, so that the
	// machine's noise falls on all of them; the figures are medians.
	ways := []struct {
		name, url string
		header    http.Header
		ws        *websocket.Conn
		took      []time.Duration
	}{
		{name: "direct", url: kernel.URL},
		{name: "frontdoor", url: f.URL, header: http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}},
		{name: "bare", url: bare.URL},
	}
	for i := range ways {
		w := &ways[i]
		cfg, _ := websocket.NewConfig(strings.Replace(w.url, "http", "ws", 1)+"/u/flot/alice/api/kernels/k/channels", w.url)
		cfg.Header = w.header
		if w.ws, err = cfg.DialContext(b.Context()); err != nil {
			b.Fatal(err)
		}
		defer w.ws.Close()
	}
	msg := []byte(`{"header":{"msg_type":"execute_request"},"content":{"code":"1"}}`)
	buf := make([]byte, 4096)
	for b.Loop() {
		for i := range ways {
			w := &ways[i]
			t0 := time.Now()
			if _, err := w.ws.Write(msg); err != nil {
				b.Fatal(err)
			}
			for range 5 {
				if _, err := w.ws.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
			w.took = append(w.took, time.Since(t0))
		}
	}
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2])
	}
	d, v, r := med(ways[0].took), med(ways[1].took), med(ways[2].took)
	b.ReportMetric(d, "direct-ns")
	b.ReportMetric(v, "frontdoor-ns")
	b.ReportMetric(r, "bare-ns")
	b.ReportMetric(v/r, "frontdoor/bare")
	b.ReportMetric((v-d)/(r-d), "hop/barehop")
}
