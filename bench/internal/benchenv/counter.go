package benchenv

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Counter is an http.RoundTripper that counts engine API calls by method
// and path shape: the version prefix dropped, one container's or image's
// ID written {id}, so that a count says which kind of call grows with the containers.
type Counter struct {
	Base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

// RoundTrip counts r, then sends it through Base.
func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.Count(r)
	return c.Base.RoundTrip(r)
}

// Count counts r without sending it (for calls that reach the engine some
// other way, a counting proxy say).
func (c *Counter) Count(r *http.Request) {
	p := r.URL.Path
	if strings.HasPrefix(p, "/v1.") {
		if i := strings.Index(p[1:], "/"); i > 0 {
			p = p[i+1:]
		}
	}
	if rest, ok := strings.CutPrefix(p, "/containers/"); ok && rest != "json" {
		_, verb, _ := strings.Cut(rest, "/")
		p = "/containers/{id}" + suffix(verb)
	} else if rest, ok := strings.CutPrefix(p, "/images/"); ok && (strings.Contains(rest, "/") || !imageEndpoints[rest]) {
		// An image's name may hold slashes: the verb is the last part.
		verb := ""
		if i := strings.LastIndexByte(rest, '/'); i >= 0 && imageVerbs[rest[i+1:]] {
			verb = rest[i+1:]
		}
		p = "/images/{id}" + suffix(verb)
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Method+" "+p]++
	c.mu.Unlock()
}

// The image API's paths that name no image, and its verbs after a name.
var (
	imageEndpoints = map[string]bool{"json": true, "create": true, "load": true, "prune": true, "search": true, "get": true}
	imageVerbs     = map[string]bool{"json": true, "history": true, "tag": true, "push": true, "get": true}
)

func suffix(verb string) string {
	if verb == "" {
		return ""
	}
	return "/" + verb
}

// Take returns the counts since the last Take and starts afresh.
func (c *Counter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// Total is the number of calls in counts.
func Total(counts map[string]int) int {
	t := 0
	for _, v := range counts {
		t += v
	}
	return t
}

// Describe writes counts as "GET /x ×2, GET /y ×1", sorted.
func Describe(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}

// UnixTransport dials the engine's unix socket sock for every request.
func UnixTransport(sock string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}, MaxIdleConnsPerHost: 16}
}
