package daemon

import (
	"strings"
	"testing"
)

// The demo credential is refused wherever someone else could use it.
func TestCheckDemo(t *testing.T) {
	door := ProxyOptions{Listen: "127.0.0.1:8788"}
	for _, tc := range []struct {
		name string
		o    Options
		want string // "" for accepted
	}{
		{"off", Options{Listen: "0.0.0.0:8787"}, ""},
		{"make run", Options{Demo: "alice", Listen: "127.0.0.1:8787", Proxy: door}, ""},
		{"localhost", Options{Demo: "alice", Listen: "localhost:8787", Proxy: door}, ""},
		{"IPv6 loopback", Options{Demo: "alice", Listen: "[::1]:8787", Proxy: door}, ""},
		{"another loopback address", Options{Demo: "alice", Listen: "127.0.0.2:0", Proxy: door}, ""},
		{"every interface", Options{Demo: "alice", Listen: ":8787", Proxy: door}, "must be a loopback address"},
		{"every interface, written out", Options{Demo: "alice", Listen: "0.0.0.0:8787", Proxy: door}, "loopback"},
		{"every IPv6 interface", Options{Demo: "alice", Listen: "[::]:8787", Proxy: door}, "loopback"},
		{"a public address", Options{Demo: "alice", Listen: "192.0.2.10:8787", Proxy: door}, "loopback"},
		{"a name", Options{Demo: "alice", Listen: "hub.example.org:8787", Proxy: door}, "loopback"},
		{"no front door", Options{Demo: "alice", Listen: "127.0.0.1:8787"}, "--proxy-listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.checkDemo()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkDemo() = %v, want %q", err, tc.want)
			}
		})
	}
}
