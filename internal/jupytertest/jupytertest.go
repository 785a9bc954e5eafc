// Package jupytertest runs a real Jupyter server in a container for tests.
//
// The server comes from the image nbhtest-jupyter:latest, built offline by
// testimages/jupyter/build.sh (Debian's jupyter-server 1.23 and notebook
// 6.4 packages), or for FlavorServer2 from nbhtest-jupyter2:latest
// (build.sh --gen 2: Debian trixie's jupyter_server 2.15). Start runs one
// container per call, publishes its port on 127.0.0.1 and removes the
// container when the test ends. The Server methods talk to the Jupyter REST
// API (and, for Execute and Connect, the kernel websocket) the way a browser
// or an activity probe would.
//
// Facts established by this package's tests, identical for jupyter_server
// 1.23 (FlavorServer) and notebook 6.4 (FlavorNotebook):
//
//   - GET /api/status never moves the global last_activity it reports.
//   - Every other authenticated API request (GET /api/kernels,
//     /api/kernels/ID, /api/sessions, /api/kernelspecs, /api/contents,
//     /api/terminals, /api) sets the global last_activity to its own time;
//     adding the query parameter no_track_activity=1 prevents that.
//     Requests rejected for lack of a token (403) do not move it.
//   - No REST read moves a kernel's last_activity or execution_state: those
//     follow only the kernel's own IOPub messages (running a cell, the
//     kernel_info exchange when a websocket opens, interrupt, restart).
//   - /api/status's last_activity is the newest of started, the last
//     tracked request and every kernel's last_activity; a fresh server
//     reports last_activity == started.
//   - A new kernel is listed "starting", and stays so until the server sees
//     one of its status messages; right after start the server can miss the
//     kernel's first messages, so the listed state may lag the truth.
//   - Timestamps are ISO 8601 UTC with a "Z" and microseconds (Python's
//     isoformat: the fraction is left out when it is zero).
//   - Each kernel's "connections" counts its open websockets, on every
//     generation (jupyter_server 2.15, FlavorServer2, too); /api/status's
//     "connections" is their sum; a closed one stops being counted.
//
// So an activity probe should read GET /api/kernels?no_track_activity=1
// (or use per-kernel timestamps only) and GET /api/status freely.
// testdata/<flavor>/ holds verbatim answers for fakes to replay.
//
// Tests that use it skip when the image is missing, unless
// NBH_REQUIRE_JUPYTER=1 is set: then they fail, so CI cannot pass silently
// without the real server.
package jupytertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
)

// Image is the image Start runs for the first generation (FlavorServer,
// FlavorNotebook); testimages/jupyter/build.sh builds it.
const Image = "nbhtest-jupyter:latest"

// RequireEnv is the environment variable that turns a missing image (or
// engine) into a test failure instead of a skip.
const RequireEnv = "NBH_REQUIRE_JUPYTER"

// NamePrefix starts the name of every container Start creates.
const NamePrefix = "nbhtest-jup-"

// containerPort is where the server listens inside the container.
const containerPort = "8888/tcp"

// Flavor selects which Jupyter server application runs.
type Flavor string

const (
	// FlavorServer runs `jupyter server` (jupyter_server's ServerApp, the
	// backend of JupyterLab: what `jupyter lab` course images serve).
	FlavorServer Flavor = "server"
	// FlavorNotebook runs the classic `jupyter notebook` (NotebookApp 6.x),
	// which older nbhosting images still serve.
	FlavorNotebook Flavor = "notebook"
	// FlavorServer2 runs jupyter_server 2.15 (`python3 -m jupyter_server`,
	// from Image2): the second generation, where the kernel websocket's
	// kernel_info "nudge" no longer overwrites a kernel's busy state.
	FlavorServer2 Flavor = "server2"
)

// Flavors lists the first generation's flavors, for tests that check both
// of its servers.
var Flavors = []Flavor{FlavorServer, FlavorNotebook}

// Generations lists one flavor or more of each generation: every server
// application nbh-sync must read, from both images.
var Generations = []Flavor{FlavorServer, FlavorNotebook, FlavorServer2}

// Image is the image that runs the flavor.
func (f Flavor) Image() string {
	if f == FlavorServer2 {
		return Image2
	}
	return Image
}

// Options tunes Start. The zero value is usable.
type Options struct {
	// Flavor is the server application; FlavorServer when empty.
	Flavor Flavor
	// Token is the server's auth token; random when empty.
	Token string
	// BaseURL is the server's URL prefix, e.g. "/8123/" as nbhosting uses;
	// "/" when empty. Slashes are added at both ends when missing.
	// "{port}" in it stands for the published host port: "/{port}/" is
	// nbhosting's convention, which nbh-sync's containers package follows.
	BaseURL string
	// Name is the container name; NamePrefix plus a random suffix when empty.
	Name string
	// Labels are added to the container (e.g. the org.nbhosting.* labels
	// that make it look like a student container). "{port}" in a value
	// stands for the published host port (org.nbhosting.port: "{port}").
	Labels map[string]string
	// HostPort is the port published on 127.0.0.1; when zero the engine
	// picks one, unless "{port}" appears in BaseURL, Labels or Args: then
	// Start picks a free one itself (it must know it before the container
	// is made) and picks again if another process takes it first.
	HostPort int
	// User runs the server; "jovyan" (uid 1000, present in the image) when
	// empty.
	User string
	// Args are extra command-line arguments for the server; "{port}"
	// stands for the published host port.
	Args []string
	// ReadyTimeout bounds the wait for the server to answer; 3 minutes when zero.
	ReadyTimeout time.Duration
}

// Server is a running Jupyter server in a container.
type Server struct {
	// Flavor is the server application that runs.
	Flavor Flavor
	// URL is the server's root, base URL included, with a trailing slash:
	// http://127.0.0.1:PORT/BASE/.
	URL string
	// HostPort is the port published on 127.0.0.1.
	HostPort int
	// Token authenticates API requests (sent as "Authorization: token ...").
	Token string
	// BaseURL is the server's URL prefix, with slashes at both ends.
	BaseURL string
	// ContainerID and ContainerName identify the container.
	ContainerID, ContainerName string

	http *http.Client
	// header, when set, authenticates requests instead of the token (see
	// Via).
	header http.Header
	// addr, when set, is where every connection goes, whatever URL's host
	// (see ViaAt).
	addr string
}

// Via returns a view of s reached at base (the server's URL through a
// proxy: scheme, host and the same prefix, with a trailing slash) with
// header sent on every request and websocket instead of the token — a
// session cookie, as a browser behind an authenticating proxy sends.
func (s *Server) Via(base string, header http.Header) *Server {
	v := *s
	v.URL = base
	v.header = header.Clone()
	v.http = &http.Client{Timeout: 5 * time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &v
}

// ViaAt is Via for a base URL whose host does not resolve (a host per
// student, alice-flot.nb.example.org): every connection goes to addr, with
// the URL's host in Host and Origin, as a browser resolving it would send.
func (s *Server) ViaAt(base string, header http.Header, addr string) *Server {
	v := s.Via(base, header)
	v.addr = addr
	d := &net.Dialer{Timeout: 10 * time.Second}
	v.http.Transport = &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}
	return v
}

// Authorize adds the view's credentials to h: the token, or Via's header.
func (s *Server) Authorize(h http.Header) {
	if s.header == nil {
		h.Set("Authorization", "token "+s.Token)
		return
	}
	for k, vs := range s.header {
		h[k] = append([]string(nil), vs...)
	}
}

// Client is the HTTP client of the view.
func (s *Server) Client() *http.Client { return s.http }

// Start runs a Jupyter server container from Image and waits until its API
// answers. The container is removed when the test ends (its log is printed
// first if the test failed). Start skips the test when the image is missing
// (fails when NBH_REQUIRE_JUPYTER=1) and fails it on any other error.
func Start(t testing.TB, cli *client.Client, opts Options) *Server {
	t.Helper()
	ctx := t.Context()
	opts = withDefaults(opts)
	RequireImage(t, cli, opts.Flavor.Image())
	pick := opts.HostPort == 0 && usesPort(opts)
	var s *Server
	for attempt := 1; ; attempt++ {
		o := opts
		if pick {
			port, err := freePort()
			if err != nil {
				t.Fatalf("jupytertest: %v", err)
			}
			o.HostPort = port
		}
		var err error
		s, err = create(ctx, t, cli, expandPort(o))
		if err == nil {
			break
		}
		if pick && errors.Is(err, errPortInUse) && attempt < 5 {
			t.Logf("jupytertest: %v; choosing another port", err)
			continue
		}
		t.Fatalf("jupytertest: %v", err)
	}

	readyCtx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	if err := s.waitReady(readyCtx, cli); err != nil {
		t.Fatalf("jupytertest: server %s not ready: %v\n%s", opts.Name, err, s.logs(context.WithoutCancel(ctx), cli))
	}
	return s
}

// errPortInUse: the chosen host port was taken before the engine bound it.
var errPortInUse = errors.New("host port already in use")

// create makes and starts the container of o (placeholders expanded), and
// arranges for its removal when the test ends. A container that fails to
// start is removed at once (so that Start can try another port).
func create(ctx context.Context, t testing.TB, cli *client.Client, opts Options) (*Server, error) {
	cfg := &container.Config{
		Image:        opts.Flavor.Image(),
		User:         opts.User,
		Cmd:          command(opts),
		Env:          []string{"PYDEVD_DISABLE_FILE_VALIDATION=1"}, // silences ipykernel's debugger warning in logs
		ExposedPorts: nat.PortSet{containerPort: {}},
		Labels:       opts.Labels,
		WorkingDir:   "/home/jovyan",
	}
	hostPortText := ""
	if opts.HostPort != 0 {
		hostPortText = strconv.Itoa(opts.HostPort)
	}
	hostCfg := &container.HostConfig{
		PortBindings: nat.PortMap{containerPort: {{HostIP: "127.0.0.1", HostPort: hostPortText}}},
	}
	created, err := cli.ContainerCreate(ctx, cfg, hostCfg, nil, nil, opts.Name)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", opts.Name, err)
	}
	s := &Server{
		Flavor:        opts.Flavor,
		Token:         opts.Token,
		BaseURL:       opts.BaseURL,
		ContainerID:   created.ID,
		ContainerName: opts.Name,
		http:          &http.Client{Timeout: requestTimeout},
	}
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cli.ContainerRemove(rmCtx, created.ID, container.RemoveOptions{Force: true})
		if msg := err.Error(); strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use") {
			return nil, fmt.Errorf("start container %s: %w: %v", opts.Name, errPortInUse, err)
		}
		return nil, fmt.Errorf("start container %s: %w", opts.Name, err)
	}
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if t.Failed() {
			t.Logf("jupytertest: log of %s:\n%s", opts.Name, s.logs(ctx, cli))
		}
		if err := cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("jupytertest: remove container %s: %v", opts.Name, err)
		}
	})
	port, err := hostPort(ctx, cli, created.ID)
	if err != nil {
		return nil, err
	}
	s.HostPort = port
	s.URL = "http://127.0.0.1:" + strconv.Itoa(port) + opts.BaseURL
	return s, nil
}

// portPlaceholder stands for the published host port in Options.
const portPlaceholder = "{port}"

// usesPort reports whether o refers to the host port.
func usesPort(o Options) bool {
	if strings.Contains(o.BaseURL, portPlaceholder) {
		return true
	}
	for _, v := range o.Labels {
		if strings.Contains(v, portPlaceholder) {
			return true
		}
	}
	for _, a := range o.Args {
		if strings.Contains(a, portPlaceholder) {
			return true
		}
	}
	return false
}

// expandPort replaces {port} with o.HostPort in BaseURL, Labels and Args,
// without touching the caller's map or slice.
func expandPort(o Options) Options {
	if !usesPort(o) {
		return o
	}
	p := strconv.Itoa(o.HostPort)
	o.BaseURL = strings.ReplaceAll(o.BaseURL, portPlaceholder, p)
	labels := make(map[string]string, len(o.Labels))
	for k, v := range o.Labels {
		labels[k] = strings.ReplaceAll(v, portPlaceholder, p)
	}
	o.Labels = labels
	args := make([]string, len(o.Args))
	for i, a := range o.Args {
		args[i] = strings.ReplaceAll(a, portPlaceholder, p)
	}
	o.Args = args
	return o
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another
// process may take it before the engine binds it; Start then picks again.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("choose a host port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withDefaults(o Options) Options {
	if o.Flavor == "" {
		o.Flavor = FlavorServer
	}
	if o.Token == "" {
		o.Token = randomHex(16)
	}
	if o.BaseURL == "" {
		o.BaseURL = "/"
	}
	if !strings.HasPrefix(o.BaseURL, "/") {
		o.BaseURL = "/" + o.BaseURL
	}
	if !strings.HasSuffix(o.BaseURL, "/") {
		o.BaseURL += "/"
	}
	if o.Name == "" {
		o.Name = NamePrefix + randomHex(6)
	}
	if o.User == "" {
		o.User = "jovyan"
	}
	if o.ReadyTimeout == 0 {
		// A real Jupyter server starts in 2–5 s here, but its Python imports
		// took over a minute on a machine loaded to 40: readiness is waited
		// on, so a generous bound costs nothing when all is well.
		o.ReadyTimeout = 3 * time.Minute
	}
	return o
}

// command is the server's command line for a flavor; the two applications
// take the same options under different class names.
func command(o Options) []string {
	app := "ServerApp"
	if o.Flavor == FlavorNotebook {
		app = "NotebookApp"
	}
	cmd := []string{"jupyter", string(o.Flavor)}
	if o.Flavor == FlavorServer2 {
		// Image2 has no `jupyter server` subcommand: the module runs.
		cmd = []string{"python3", "-m", "jupyter_server"}
	}
	cmd = append(cmd,
		"--ip=0.0.0.0", "--port=8888", "--no-browser",
		"--"+app+".token="+o.Token,
		"--"+app+".base_url="+o.BaseURL,
	)
	return append(cmd, o.Args...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

func hostPort(ctx context.Context, cli *client.Client, id string) (int, error) {
	info, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("inspect container %s: %w", id, err)
	}
	if info.NetworkSettings == nil {
		return 0, fmt.Errorf("container %s has no network settings", id)
	}
	bindings := info.NetworkSettings.Ports[containerPort]
	if len(bindings) == 0 {
		return 0, fmt.Errorf("container %s publishes no port for %s", id, containerPort)
	}
	port, err := strconv.Atoi(bindings[0].HostPort)
	if err != nil {
		return 0, fmt.Errorf("container %s: bad host port %q: %w", id, bindings[0].HostPort, err)
	}
	return port, nil
}

// waitReady polls /api/status until it answers 200, the container stops, or
// ctx ends. /api/status does not count as activity (see the package tests),
// so the wait leaves the server's last_activity at its start time.
func (s *Server) waitReady(ctx context.Context, cli *client.Client) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if _, err := s.Status(ctx); err == nil {
			return nil
		} else {
			lastErr = err
		}
		info, err := cli.ContainerInspect(ctx, s.ContainerID)
		if err == nil && info.State != nil && !info.State.Running {
			return fmt.Errorf("container exited (status %d)", info.State.ExitCode)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// logs returns the container's output, or a note saying why it cannot.
func (s *Server) logs(ctx context.Context, cli *client.Client) string {
	rc, err := cli.ContainerLogs(ctx, s.ContainerID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		fmt.Fprintf(&buf, "\n(log truncated: %v)", err)
	}
	return buf.String()
}
