package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Docker is the Engine of a real Docker engine. It is the only user of the
// Docker SDK in this package.
type Docker struct {
	cli *client.Client
	// negotiated: List's own requests use the engine's API version.
	negotiated atomic.Bool
}

var _ Engine = (*Docker)(nil)

// NewDocker wraps an SDK client (made with client.FromEnv and
// client.WithAPIVersionNegotiation()).
func NewDocker(cli *client.Client) *Docker { return &Docker{cli: cli} }

// DialDocker connects to the engine of the environment (DOCKER_HOST or the
// local socket), with API version negotiation on. opts come after, so a
// caller may swap the HTTP client (client.WithHTTPClient).
func DialDocker(opts ...client.Opt) (*Docker, error) {
	cli, err := client.NewClientWithOpts(append([]client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to docker engine: %w", err)
	}
	return NewDocker(cli), nil
}

// Negotiate agrees on the API version with the engine, once, for List's
// own requests and the SDK's calls alike: one ping (the SDK's own
// negotiation is then done). A caller that makes its first engine calls
// concurrently negotiates first; else List and the SDK could each ping.
func (d *Docker) Negotiate(ctx context.Context) error {
	if d.negotiated.Load() {
		return nil
	}
	ping, err := d.cli.Ping(ctx)
	if err != nil {
		return fmt.Errorf("docker engine: %w", err)
	}
	d.cli.NegotiateAPIVersionPing(ping)
	d.negotiated.Store(true)
	return nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.cli.Close() }

// localCapabilities are the zero Capabilities, the local engine's: named so
// that the kind's registration and the engine say it once.
var localCapabilities = Capabilities{}

// Capabilities reports localCapabilities.
func (d *Docker) Capabilities() Capabilities { return localCapabilities }

// openLocal opens the engine of the environment; e has nothing for it.
func openLocal(manifest.Engine) (Engine, error) {
	d, err := DialDocker()
	if err != nil {
		return nil, err // not a nil *Docker in a non-nil Engine
	}
	return d, nil
}

// Images resolves refs in one ImageList call (reference filters are ORed).
func (d *Docker) Images(ctx context.Context, refs []string) (map[string]Image, error) {
	out := map[string]Image{}
	if len(refs) == 0 {
		return out, nil
	}
	f := filters.NewArgs()
	for _, r := range refs {
		f.Add("reference", r)
	}
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{Filters: f})
	for try := 0; imageref.ListAgain(ctx, err, try); try++ {
		imgs, err = d.cli.ImageList(ctx, image.ListOptions{Filters: f})
	}
	if err != nil {
		return nil, fmt.Errorf("list images %s: %w", strings.Join(refs, " "), err)
	}
	want := map[string]bool{}
	for _, r := range refs {
		want[r] = true
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if tag = imageref.Familiar(tag); want[tag] {
				out[tag] = Image{ID: img.ID, Labels: img.Labels}
			}
		}
	}
	return out, nil
}

// Inspect returns one container with its exact start time.
func (d *Docker) Inspect(ctx context.Context, name string) (Raw, error) {
	c, err := d.cli.ContainerInspect(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Raw{}, fmt.Errorf("inspect container %s: %w", name, ErrNotFound)
		}
		return Raw{}, fmt.Errorf("inspect container %s: %w", name, err)
	}
	r := Raw{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), ImageID: c.Image}
	if c.State != nil {
		r.EngineState = string(c.State.Status)
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil && t.Year() > 1 {
			r.StartedAt = t
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, c.Created); err == nil {
		r.Created = t
	}
	if c.Config != nil {
		r.Labels = c.Config.Labels
	}
	// A stopped container has no live bindings; its configured ones say
	// which port it will get back when started.
	var pm nat.PortMap
	if c.HostConfig != nil {
		pm = c.HostConfig.PortBindings
	}
	if c.NetworkSettings != nil && len(c.NetworkSettings.Ports) > 0 {
		pm = c.NetworkSettings.Ports
	}
	for p, bs := range pm {
		if p.Proto() != "tcp" {
			continue
		}
		for _, b := range bs {
			if hp, err := strconv.Atoi(b.HostPort); err == nil && hp != 0 {
				if r.Ports == nil {
					r.Ports = map[int]int{}
				}
				r.Ports[p.Int()] = hp
				break
			}
		}
	}
	return r, nil
}

// Create makes a container, publishing spec.Port on spec.HostIP:HostPort.
func (d *Docker) Create(ctx context.Context, spec Spec) (string, error) {
	port := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
	cfg := &container.Config{
		Image: spec.Image, User: spec.User, Cmd: spec.Cmd, Env: spec.Env, Labels: spec.Labels,
		ExposedPorts: nat.PortSet{port: {}},
	}
	if spec.Entrypoint != nil {
		cfg.Entrypoint = spec.Entrypoint
		if len(spec.Entrypoint) == 0 {
			// What `docker run --entrypoint=` sends: Docker and podman
			// both read it as "no entrypoint".
			cfg.Entrypoint = []string{""}
		}
	}
	hc := &container.HostConfig{
		Binds:        spec.Binds,
		PortBindings: nat.PortMap{port: {{HostIP: spec.HostIP, HostPort: strconv.Itoa(spec.HostPort)}}},
		Resources: container.Resources{
			Memory:   spec.Memory,
			NanoCPUs: int64(spec.CPUs * 1e9),
		},
	}
	res, err := d.cli.ContainerCreate(ctx, cfg, hc, nil, nil, spec.Name)
	if err != nil {
		// podman answers a taken name with a 500 that says so.
		if cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "is already in use") {
			return "", fmt.Errorf("create container %s: %w", spec.Name, ErrConflict)
		}
		if cerrdefs.IsNotFound(err) {
			return "", fmt.Errorf("create container %s: image %s: %w", spec.Name, spec.Image, ErrNotFound)
		}
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	return res.ID, nil
}

// Start starts a container; starting a running one is a no-op.
func (d *Docker) Start(ctx context.Context, id string) error {
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use") {
			return fmt.Errorf("start container %s: %w: %v", id, ErrPortInUse, err)
		}
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Stop stops a container, killing it after timeout; missing or already
// stopped is success.
func (d *Docker) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(timeout / time.Second)
	if err := d.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Remove removes a container (forcing a running one), never its volumes;
// missing is success, and so is a removal already in progress.
func (d *Docker) Remove(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: false})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	if cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress") {
		return nil
	}
	return fmt.Errorf("remove container %s: %w", id, err)
}

// CPUTime returns the CPU time a container's processes used since it
// started, from one one-shot stats call (the engine answers at once, from
// the container's cgroup, instead of sampling for a second). For the
// activity probe when the container's cgroup is not on this host.
func (d *Docker) CPUTime(ctx context.Context, id string) (time.Duration, error) {
	rd, err := d.cli.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("stats of container %s: %w", id, err)
	}
	defer rd.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(io.LimitReader(rd.Body, 1<<20)).Decode(&st); err != nil {
		return 0, fmt.Errorf("stats of container %s: %w", id, err)
	}
	if st.CPUStats.CPUUsage.TotalUsage == 0 && st.Read.IsZero() {
		return 0, fmt.Errorf("stats of container %s: no CPU figures (not running?)", id)
	}
	return time.Duration(st.CPUStats.CPUUsage.TotalUsage), nil
}

// Exec runs x in container id through the engine's exec API and waits for
// it: standard output kept up to x.Limit, the tail of standard error for
// the message of a failure.
func (d *Docker) Exec(ctx context.Context, id string, x Exec) ([]byte, error) {
	fail := func(err error) ([]byte, error) { return nil, fmt.Errorf("exec in container %s: %w", id, err) }
	ex, err := d.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: x.Cmd, User: x.User, Env: x.Env,
		WorkingDir: x.Dir, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return fail(err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return fail(err)
	}
	defer att.Close()
	// Closing the connection when ctx ends unblocks the copy.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	out := &limitedBuffer{limit: x.Limit}
	errOut := &limitedBuffer{limit: 64 << 10, tail: true}
	if _, err := stdcopy.StdCopy(out, errOut, att.Reader); err != nil {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(err)
	}
	if out.over {
		return fail(fmt.Errorf("%w: more than %d bytes", ErrOutputTooLarge, x.Limit))
	}
	ins, err := d.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return fail(err)
	}
	if ins.ExitCode != 0 {
		return fail(&ExitError{Code: ins.ExitCode, Stderr: strings.TrimSpace(errOut.String())})
	}
	return out.Bytes(), nil
}

// limitedBuffer keeps up to limit bytes: the first ones, or with tail the
// last ones. It never fails a write, so the stream is read to its end.
type limitedBuffer struct {
	bytes.Buffer
	limit int64
	tail  bool
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.limit - int64(b.Len()); int64(len(p)) > room {
		b.over = true
		if !b.tail {
			p = p[:max(room, 0)]
		}
	}
	b.Buffer.Write(p)
	if b.tail && int64(b.Len()) > b.limit {
		keep := b.Bytes()[int64(b.Len())-b.limit:]
		tail := bytes.Clone(keep)
		b.Reset()
		b.Buffer.Write(tail)
	}
	return n, nil
}
