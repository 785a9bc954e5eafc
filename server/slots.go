package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// slots bound the requests served at once, in all and per source.
type slots struct {
	mu               sync.Mutex
	total, perSource int
	n                int
	bySource         map[string]int
}

func newSlots(total, perSource int) *slots {
	return &slots{total: total, perSource: perSource, bySource: map[string]int{}}
}

// take returns a slot for source, and the function that gives it back;
// ok is false when every slot, or every one of source's, is taken.
func (s *slots) take(source string) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= s.total || s.bySource[source] >= s.perSource {
		return nil, false
	}
	s.n++
	s.bySource[source]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n--
		if s.bySource[source]--; s.bySource[source] == 0 {
			delete(s.bySource, source)
		}
	}, true
}

// hookSource names who sent r, for the webhook slots: its client's
// address, an IPv6 one by its /64 (what one host gets). A peer on a
// loopback address is the reverse proxy in front, whose client is the
// last X-Forwarded-For address (the one that proxy added: nginx's
// $proxy_add_x_forwarded_for, Caddy's). A local user can name any source
// that way; the total bound still holds. The source only shares out
// slots: it authorises nothing.
func hookSource(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if addr.IsLoopback() {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			last := xff[len(xff)-1]
			last = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
			if a, err := netip.ParseAddr(last); err == nil {
				addr = a
			}
		}
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
