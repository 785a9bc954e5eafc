package jupytertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// requestTimeout bounds one request to a server. Generous: on a starved
// machine jupyter_server 1.23 took over 30 s to answer POST api/kernels,
// which it answers once the kernel's process is up.
const requestTimeout = 2 * time.Minute

// Kernel is one kernel as the REST API reports it (GET /api/kernels,
// GET /api/kernels/ID, POST /api/kernels).
type Kernel struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// LastActivity moves when the kernel sends a message on its IOPub
	// channel (execution, status changes), never on REST reads.
	LastActivity time.Time `json:"last_activity"`
	// ExecutionState is "starting", "idle", "busy", ... "starting" lasts
	// until the kernel's first status message the server sees, which can be
	// never for a kernel that no client connected to.
	ExecutionState string `json:"execution_state"`
	Connections    int    `json:"connections"`
}

// Status is the server's GET /api/status answer.
type Status struct {
	Connections int `json:"connections"`
	Kernels     int `json:"kernels"`
	// LastActivity is the newest of Started, the last tracked API request
	// and every kernel's (and terminal's) last activity.
	LastActivity time.Time `json:"last_activity"`
	Started      time.Time `json:"started"`
}

// Dial returns a client of a Jupyter server that runs already — one that
// nbh-sync spawned, say — at serverURL (http://HOST:PORT/BASE/), sending
// token. It is a Server without a container of its own: its API methods
// work; Flavor, ContainerID and ContainerName are empty.
func Dial(serverURL, token string) (*Server, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("jupytertest: server URL %q: want http://HOST:PORT/BASE/", serverURL)
	}
	port, _ := strconv.Atoi(u.Port())
	base := "/" + strings.Trim(u.Path, "/") + "/"
	if base == "//" {
		base = "/"
	}
	return &Server{URL: "http://" + u.Host + base, HostPort: port, Token: token, BaseURL: base,
		http: &http.Client{Timeout: requestTimeout}}, nil
}

// HTTPError is a non-2xx answer from the server.
type HTTPError struct {
	Method, Path string
	StatusCode   int
	Body         string
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, strings.TrimSpace(e.Body))
}

// Raw sends one authenticated request to path (relative to the server's
// URL, e.g. "api/kernels?no_track_activity=1"), with body JSON-encoded when
// not nil, and returns the answer's body. A non-2xx answer is an *HTTPError.
func (s *Server) Raw(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	s.Authorize(req.Header)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &HTTPError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: string(b)}
	}
	return b, nil
}

// Do is Raw followed by decoding the JSON answer into out (when not nil).
func (s *Server) Do(ctx context.Context, method, path string, body, out any) error {
	b, err := s.Raw(ctx, method, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer %q: %w", method, path, b, err)
	}
	return nil
}

// Status reads GET /api/status. That endpoint does not count as activity.
func (s *Server) Status(ctx context.Context) (Status, error) {
	var st Status
	err := s.Do(ctx, http.MethodGet, "api/status", nil, &st)
	return st, err
}

// Kernels reads GET /api/kernels, as a naive activity probe would: the
// request itself moves the server's global last_activity (see
// KernelsUntracked).
func (s *Server) Kernels(ctx context.Context) ([]Kernel, error) {
	var ks []Kernel
	err := s.Do(ctx, http.MethodGet, "api/kernels", nil, &ks)
	return ks, err
}

// KernelsUntracked reads GET /api/kernels?no_track_activity=1, which both
// server flavors exclude from the global last_activity.
func (s *Server) KernelsUntracked(ctx context.Context) ([]Kernel, error) {
	var ks []Kernel
	err := s.Do(ctx, http.MethodGet, "api/kernels?no_track_activity=1", nil, &ks)
	return ks, err
}

// Kernel reads GET /api/kernels/ID.
func (s *Server) Kernel(ctx context.Context, id string) (Kernel, error) {
	var k Kernel
	err := s.Do(ctx, http.MethodGet, "api/kernels/"+id, nil, &k)
	return k, err
}

// CreateKernel starts a python3 kernel (POST /api/kernels), as opening a
// notebook does.
func (s *Server) CreateKernel(ctx context.Context) (Kernel, error) {
	var k Kernel
	err := s.Do(ctx, http.MethodPost, "api/kernels", map[string]string{"name": "python3"}, &k)
	return k, err
}

// InterruptKernel interrupts a kernel (POST /api/kernels/ID/interrupt).
func (s *Server) InterruptKernel(ctx context.Context, id string) error {
	return s.Do(ctx, http.MethodPost, "api/kernels/"+id+"/interrupt", nil, nil)
}

// RestartKernel restarts a kernel (POST /api/kernels/ID/restart).
func (s *Server) RestartKernel(ctx context.Context, id string) (Kernel, error) {
	var k Kernel
	err := s.Do(ctx, http.MethodPost, "api/kernels/"+id+"/restart", nil, &k)
	return k, err
}

// DeleteKernel shuts a kernel down (DELETE /api/kernels/ID).
func (s *Server) DeleteKernel(ctx context.Context, id string) error {
	return s.Do(ctx, http.MethodDelete, "api/kernels/"+id, nil, nil)
}
