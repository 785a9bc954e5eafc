package benchenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
)

// WatchtowerEnable is the label watchtower --label-enable monitors (and
// only containers that carry it).
const WatchtowerEnable = "com.centurylinklabs.watchtower.enable"

// EngineSocket is the engine's unix socket: DOCKER_HOST's when set, else
// Docker's default. A DOCKER_HOST that names no unix socket is an error:
// counting calls needs a socket to stand in front of.
func EngineSocket() (string, error) {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return "/var/run/docker.sock", nil
	}
	if p, ok := strings.CutPrefix(h, "unix://"); ok {
		return p, nil
	}
	return "", fmt.Errorf("DOCKER_HOST=%s: counting needs the engine on a unix socket", h)
}

// CountingProxy serves the engine's API (at the unix socket engine) on a
// unix socket at path, counting every request in c; modify, when not nil,
// may rewrite an answer before it is passed on. It returns a stop
// function.
func CountingProxy(path, engine string, c *Counter, modify func(*http.Response) error) (func(), error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	target, _ := url.Parse("http://docker")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = UnixTransport(engine)
	rp.FlushInterval = -1
	rp.ModifyResponse = modify
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Count(r)
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
