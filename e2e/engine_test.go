//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
)

// dockerSocket is the engine the tests and (through engineProxy) the
// daemon talk to.
const dockerSocket = "/var/run/docker.sock"

// engineProxy serves the engine's API on a TCP port, for the daemon's
// DOCKER_HOST. It does two things the tests need:
//
//   - it shows the daemon only the containers whose names start with the
//     test's prefix: the engine is shared with other tests, and what a
//     test counts (the daemon's engine calls, the containers it lists)
//     must be its own (a site acts only on containers with its own site
//     label in any case);
//   - it can be cut (the port refuses connections and open ones are
//     closed: the engine is unreachable) and restored on the same port.
type engineProxy struct {
	addr   string
	prefix string
	proxy  *httputil.ReverseProxy

	mu    sync.Mutex
	srv   *http.Server
	conns map[net.Conn]bool
	calls int
	paths []string // "METHOD path" of every request, in order
}

var containerListPath = regexp.MustCompile(`^(/v[0-9.]+)?/containers/json$`)

func newEngineProxy(t *testing.T, prefix string) *engineProxy {
	t.Helper()
	p := &engineProxy{prefix: prefix, conns: map[net.Conn]bool{}}
	target, _ := url.Parse("http://docker")
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = "docker"
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", dockerSocket)
			},
		},
		FlushInterval:  -1, // build and wait streams
		ModifyResponse: p.filter,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

// host is the DOCKER_HOST of the proxy.
func (p *engineProxy) host() string { return "tcp://" + p.addr }

func (p *engineProxy) serve(ln net.Listener) {
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.mu.Lock()
			p.calls++
			p.paths = append(p.paths, r.Method+" "+r.URL.Path)
			p.mu.Unlock()
			p.proxy.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			p.mu.Lock()
			defer p.mu.Unlock()
			switch s {
			case http.StateNew:
				p.conns[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(p.conns, c)
			}
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// cut makes the engine unreachable: the port is closed and every open
// connection dropped, mid-request or not.
func (p *engineProxy) cut() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close() // closes the listener and every connection
	}
}

// restore listens again on the same port.
func (p *engineProxy) restore(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restore engine proxy on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// requests returns how many API requests went through.
func (p *engineProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// pathsSince returns the requests made since the first n ("METHOD path").
func (p *engineProxy) pathsSince(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths[min(n, len(p.paths)):]...)
}

// filter drops other tests' containers from container lists.
func (p *engineProxy) filter(resp *http.Response) error {
	if resp.Request.Method != http.MethodGet || !containerListPath.MatchString(resp.Request.URL.Path) || resp.StatusCode != http.StatusOK {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var list []map[string]any
	if err := json.Unmarshal(body, &list); err != nil {
		return err
	}
	kept := []map[string]any{}
	for _, c := range list {
		names, _ := c["Names"].([]any)
		for _, n := range names {
			if s, _ := n.(string); strings.HasPrefix(strings.TrimPrefix(s, "/"), p.prefix) {
				kept = append(kept, c)
				break
			}
		}
	}
	out, err := json.Marshal(kept)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return nil
}

// requireDocker returns a client of the real engine (the socket, not the
// proxy). It skips without an engine, or fails when NBH_REQUIRE_DOCKER=1.
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	return fjtest.RequireDocker(t)
}

// jupyterImage is the real Jupyter server image (testimages/jupyter).
const jupyterImage = "nbhtest-jupyter:latest"

// requireJupyter skips the test when the Jupyter image is missing, or
// fails it when NBH_REQUIRE_JUPYTER=1.
func requireJupyter(t *testing.T, cli *client.Client) {
	t.Helper()
	requireImage(t, cli, jupyterImage, "bash testimages/jupyter/build.sh")
}

// requireImage is requireJupyter for the Jupyter image ref, which build
// makes.
func requireImage(t *testing.T, cli *client.Client, ref, build string) {
	t.Helper()
	if _, err := cli.ImageInspect(t.Context(), ref); err != nil {
		msg := "image " + ref + " missing: run " + build + " first: " + err.Error()
		if os.Getenv("NBH_REQUIRE_JUPYTER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// cleanupEngine removes, when the test ends, every container and image
// whose name starts with prefix, and every image nbh-sync labelled with an
// image name starting with it (dangling builds included). Register it
// first, so that it runs after the daemon is gone.
func cleanupEngine(t *testing.T, cli *client.Client, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
		if err != nil {
			t.Logf("cleanup: list containers: %v", err)
		}
		for _, c := range cs {
			if hasPrefixName(c.Names, prefix) {
				_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		ims, err := cli.ImageList(ctx, image.ListOptions{All: true})
		if err != nil {
			t.Logf("cleanup: list images: %v", err)
			return
		}
		for _, im := range ims {
			mine := strings.HasPrefix(im.Labels["org.nbhosting.image"], prefix)
			for _, tag := range im.RepoTags {
				mine = mine || strings.HasPrefix(tag, prefix)
			}
			if mine {
				_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			}
		}
	})
}

func hasPrefixName(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(strings.TrimPrefix(n, "/"), prefix) {
			return true
		}
	}
	return false
}
