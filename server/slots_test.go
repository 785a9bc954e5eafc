package server

import (
	"net/http"
	"testing"
)

func TestHookSource(t *testing.T) {
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"203.0.113.5:4242", nil, "203.0.113.5"},
		{"203.0.113.5:4242", []string{"198.51.100.7"}, "203.0.113.5"}, // not from a proxy of this host: ignored
		{"127.0.0.1:4242", nil, "127.0.0.1"},
		{"127.0.0.1:4242", []string{"198.51.100.7"}, "198.51.100.7"},
		{"127.0.0.1:4242", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},    // the client's own is not the last
		{"127.0.0.1:4242", []string{"6.6.6.6", "198.51.100.7 "}, "198.51.100.7"}, // nor in two lines
		{"127.0.0.1:4242", []string{"not an address"}, "127.0.0.1"},
		{"[::1]:4242", []string{"2001:db8:1:2:3::9"}, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:aaaa::1]:4242", nil, "2001:db8:1:2::/64"}, // one host's /64 is one source
		{"[::ffff:203.0.113.5]:4242", nil, "203.0.113.5"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{"X-Forwarded-For": tc.xff}}
		if got := hookSource(r); got != tc.want {
			t.Errorf("%s %q: source %q, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestSlots(t *testing.T) {
	s := newSlots(3, 2)
	take := func(source string, want bool) func() {
		t.Helper()
		release, ok := s.take(source)
		if ok != want {
			t.Fatalf("take %s: %v, want %v", source, ok, want)
		}
		return release
	}
	a1 := take("a", true)
	take("a", true)
	take("a", false) // a's two are taken
	take("b", true)
	take("c", false) // all three are
	a1()
	take("a", true)
}
