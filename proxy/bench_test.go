package proxy

import (
	"io"
	"net/http"
	"testing"
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
