package containers

// This file and docker.go are the only users of the Docker SDK in this
// package; no SDK type leaves them.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/internal/registryauth"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Swarm is the Engine of a Docker Swarm cluster, reached through a manager
// node: each student container is a service of one replica, placed by the
// cluster on some node, its server published in host mode on a port the
// engine picks at every start. Stop scales the service to 0 (the container
// goes, the files stay on the mounts), Start scales it back to 1, Remove
// removes the service.
//
// Images are served by a registry: Images resolves I:latest to the
// registry/I@sha256:digest it was pushed as, services are created from that
// reference, and staleness compares those references.
type Swarm struct {
	cli *client.Client
	// Registry is host[:port] of the registry builds are pushed to.
	Registry string
	// Network, when set, is an attachable overlay network every service
	// joins (the ingress routing mesh is not used: ports are host-mode).
	Network string
	// Poll is how often Start and Stop look at the tasks while they wait.
	Poll time.Duration
	// Calls, when set, counts engine calls (benchmarks).
	Calls func(op string)
	// Auth, when set, returns the registry's credentials encoded for the
	// engine. Services are created (and scaled) with them, and the
	// engine hands them to the node that pulls the image, so nodes need
	// no login of their own. The engine keeps them out of what a service
	// inspect shows.
	Auth func() (string, error)
}

var _ Engine = (*Swarm)(nil)

// swarmCapabilities: a service's task lands on a node of the cluster's
// choosing, on a port the engine picks at its every start, from an image
// the node pulls from the registry.
var swarmCapabilities = Capabilities{PicksHostPort: true, PullsFromRegistry: true}

// NewSwarm wraps an SDK client connected to a manager node.
func NewSwarm(cli *client.Client, registry, network string) *Swarm {
	return &Swarm{cli: cli, Registry: registry, Network: network, Poll: 100 * time.Millisecond}
}

// DialSwarm connects to the manager node of the environment (DOCKER_HOST or
// the local socket), with API version negotiation on.
func DialSwarm(registry, network string, opts ...client.Opt) (*Swarm, error) {
	cli, err := client.NewClientWithOpts(append([]client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to swarm manager: %w", err)
	}
	return NewSwarm(cli, registry, network), nil
}

// openSwarm opens the Swarm engine e configures: the manager node of the
// environment, with the registry's credentials read from their file at
// each use (the file may change while the daemon runs).
func openSwarm(e manifest.Engine) (Engine, error) {
	sw, err := DialSwarm(e.Registry, e.Network)
	if err != nil {
		return nil, err
	}
	if f := e.RegistryAuthFile; f != "" {
		sw.Auth = func() (string, error) {
			c, err := registryauth.Load(f, e.Registry)
			if err != nil {
				return "", err
			}
			return c.Encoded(), nil
		}
	}
	return sw, nil
}

// Close releases the client's connections.
func (s *Swarm) Close() error { return s.cli.Close() }

// Capabilities reports swarmCapabilities.
func (s *Swarm) Capabilities() Capabilities { return swarmCapabilities }

func (s *Swarm) count(op string) {
	if s.Calls != nil {
		s.Calls(op)
	}
}

// managed selects what nbh-sync made. Task filters match the service's
// labels, so one label does for services and tasks.
func managed() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelManagedBy+"="+ManagedBy))
}

// List observes every managed service in three calls, whatever their
// number: the services, their tasks (filtered by label), and the nodes
// (for their addresses).
func (s *Swarm) List(ctx context.Context) ([]Raw, error) {
	s.count("ServiceList")
	svcs, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: managed()})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	s.count("TaskList")
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: managed()})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return nil, err
	}
	return observe(svcs, tasks, nodes), nil
}

func (s *Swarm) nodes(ctx context.Context) ([]swarm.Node, error) {
	s.count("NodeList")
	nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list swarm nodes: %w", err)
	}
	return nodes, nil
}

// Inspect observes one service (by name or ID).
func (s *Swarm) Inspect(ctx context.Context, name string) (Raw, error) {
	svc, tasks, err := s.service(ctx, name)
	if err != nil {
		return Raw{}, err
	}
	nodes, err := s.nodes(ctx)
	if err != nil {
		return Raw{}, err
	}
	return observe([]swarm.Service{svc}, tasks, nodes)[0], nil
}

// service returns a service and its tasks; ErrNotFound when there is none.
func (s *Swarm) service(ctx context.Context, name string) (swarm.Service, []swarm.Task, error) {
	s.count("ServiceInspect")
	svc, _, err := s.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return swarm.Service{}, nil, fmt.Errorf("inspect service %s: %w", name, ErrNotFound)
		}
		return swarm.Service{}, nil, fmt.Errorf("inspect service %s: %w", name, err)
	}
	s.count("TaskList")
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return swarm.Service{}, nil, fmt.Errorf("list tasks of %s: %w", name, err)
	}
	// The service filter matches by name prefix too: keep its own tasks.
	tasks = slices.DeleteFunc(tasks, func(t swarm.Task) bool { return t.ServiceID != svc.ID })
	return svc, tasks, nil
}

// observe turns services, their tasks and the nodes into Raws. A service
// scaled to 0 is stopped ("exited"); one at 1 replica is "running" with its
// task's host, port and start time once the task runs, and "restarting"
// (which counts as running: the server's probe decides) while the task is
// being scheduled, pulled or restarted.
func observe(svcs []swarm.Service, tasks []swarm.Task, nodes []swarm.Node) []Raw {
	addr := make(map[string]string, len(nodes))
	for _, n := range nodes {
		addr[n.ID] = n.Status.Addr
	}
	current := map[string]swarm.Task{} // service ID → its task meant to run
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if old, ok := current[t.ServiceID]; !ok || t.Meta.CreatedAt.After(old.Meta.CreatedAt) {
			current[t.ServiceID] = t
		}
	}
	out := make([]Raw, 0, len(svcs))
	for _, svc := range svcs {
		r := Raw{ID: svc.ID, Name: svc.Spec.Name, Created: svc.Meta.CreatedAt, Labels: svc.Spec.Labels, EngineState: "exited"}
		if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
			r.ImageID = cs.Image
		}
		if replicas(svc) > 0 {
			r.EngineState = "restarting"
			if t, ok := current[svc.ID]; ok && t.Status.State == swarm.TaskStateRunning {
				r.EngineState = "running"
				r.StartedAt = t.Status.Timestamp
				r.Host = addr[t.NodeID]
				if cs := t.Status.ContainerStatus; cs != nil {
					r.Task = cs.ContainerID
				}
				// With IPv6 on, the engine binds the port twice, IPv4
				// first (0.0.0.0:P, then [::]:Q) and reports both without
				// their addresses: the first one is the IPv4 binding the
				// node address reaches.
				for _, p := range t.Status.PortStatus.Ports {
					if p.Protocol == swarm.PortConfigProtocolTCP && p.PublishedPort != 0 {
						if r.Ports == nil {
							r.Ports = map[int]int{}
						}
						if _, seen := r.Ports[int(p.TargetPort)]; !seen {
							r.Ports[int(p.TargetPort)] = int(p.PublishedPort)
						}
					}
				}
			}
		}
		out = append(out, r)
	}
	return out
}

func replicas(svc swarm.Service) uint64 {
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		return *m.Replicas
	}
	return 0
}

// Images resolves each name:tag to the registry reference it was pushed as
// (Registry/name@sha256:…, the ID services are created from and compared
// by), with the image's labels, in one call; a reference built but not
// pushed to Registry is absent, as nodes could not pull it.
func (s *Swarm) Images(ctx context.Context, refs []string) (map[string]Image, error) {
	out := map[string]Image{}
	if len(refs) == 0 {
		return out, nil
	}
	f := filters.NewArgs()
	for _, r := range refs {
		// The engine trims RepoTags and RepoDigests to what the filter
		// matches: ask for the registry's repository too.
		f.Add("reference", r)
		f.Add("reference", s.Registry+"/"+r[:strings.LastIndex(r, ":")])
	}
	s.count("ImageList")
	imgs, err := s.cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list images %s: %w", strings.Join(refs, " "), err)
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if !slices.Contains(refs, tag) {
				continue
			}
			repo := s.Registry + "/" + tag[:strings.LastIndex(tag, ":")] + "@"
			for _, d := range img.RepoDigests {
				if strings.HasPrefix(d, repo) {
					out[tag] = Image{ID: d, Labels: img.Labels}
				}
			}
		}
	}
	return out, nil
}

// Create makes a service of spec at 0 replicas (Start scales it up):
// container labels on the container (service labels do not reach it) and on
// the service (which the task filter matches), restart on failure, limits
// and placement from spec, the server's port published in host mode on a
// port the engine picks, spec.Binds as bind mounts (node-local paths: a
// multi-node site mounts the same NFS path on every node).
func (s *Swarm) Create(ctx context.Context, spec Spec) (string, error) {
	mounts, err := bindMounts(spec.Binds)
	if err != nil {
		return "", fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	zero := uint64(0)
	attempts := uint64(3)
	svc := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: spec.Labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: spec.Image, User: spec.User, Env: spec.Env, Labels: spec.Labels, Mounts: mounts,
			},
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				NanoCPUs: int64(spec.CPUs * 1e9), MemoryBytes: spec.Memory,
			}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &attempts},
			Placement:     &swarm.Placement{Constraints: spec.Constraints},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}},
		// DNS round robin: no virtual IP, which needs IPVS, for a service
		// reached only through its host-mode port.
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{{
			Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(spec.Port), PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}
	// A service's Command replaces the image's entrypoint and cannot be
	// empty to mean "none": with no entrypoint, the command itself goes
	// there, which runs it as is.
	switch cs := svc.TaskTemplate.ContainerSpec; {
	case spec.Entrypoint == nil:
		cs.Args = spec.Cmd
	case len(spec.Entrypoint) == 0:
		cs.Command = spec.Cmd
	default:
		cs.Command, cs.Args = spec.Entrypoint, spec.Cmd
	}
	if s.Network != "" {
		svc.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: s.Network}}
	}
	var opts swarm.ServiceCreateOptions
	if s.Auth != nil {
		if opts.EncodedRegistryAuth, err = s.Auth(); err != nil {
			return "", fmt.Errorf("create service %s: %w", spec.Name, err)
		}
	}
	s.count("ServiceCreate")
	res, err := s.cli.ServiceCreate(ctx, svc, opts)
	if err != nil {
		if cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "AlreadyExists") {
			return "", fmt.Errorf("create service %s: %w", spec.Name, ErrConflict)
		}
		return "", fmt.Errorf("create service %s: %w", spec.Name, err)
	}
	return res.ID, nil
}

// bindMounts turns host:container[:ro|rw] binds into mounts.
func bindMounts(binds []string) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
			return nil, fmt.Errorf("invalid mount %q: want HOST:CONTAINER or HOST:CONTAINER:ro", b)
		}
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: parts[0], Target: parts[1], ReadOnly: len(parts) == 3 && parts[2] == "ro"})
	}
	return out, nil
}

// Start scales the service to 1 and waits until its task runs (or ctx
// ends, or the task cannot start). Starting a running service is a no-op.
//
// A scale-up sent while the previous task is still stopping can leave the
// service at 0/1 with no task meant to run; when the service sits in that
// state on three looks in a row, Start forces an update, which makes the
// orchestrator create the task.
func (s *Swarm) Start(ctx context.Context, id string) error {
	if err := s.scale(ctx, id, 1, 0); err != nil {
		return fmt.Errorf("start service %s: %w", id, err)
	}
	stuck := 0
	for attempt := 0; ; attempt++ {
		svc, tasks, err := s.service(ctx, id)
		if err != nil {
			return fmt.Errorf("start service %s: %w", id, err)
		}
		switch st := startState(tasks, svc.Meta.UpdatedAt); st.outcome {
		case taskRunning:
			return nil
		case taskFailed:
			return fmt.Errorf("start service %s: task %s: %s", id, st.task.Status.State, cmp.Or(st.task.Status.Err, st.task.Status.Message))
		case noTask:
			if stuck++; stuck >= 3 {
				// The lost scale-up: force an update.
				stuck = 0
				if err := s.scale(ctx, id, 1, 1); err != nil {
					return fmt.Errorf("start service %s: force update: %w", id, err)
				}
			}
		default:
			stuck = 0
		}
		if err := s.wait(ctx, attempt); err != nil {
			return fmt.Errorf("start service %s: %w", id, err)
		}
	}
}

type startOutcome int

const (
	taskPending startOutcome = iota // a task is on its way
	taskRunning                     // a task runs
	taskFailed                      // the last task failed and none replaces it
	noTask                          // nothing is on its way: the lost scale-up
)

type startResult struct {
	outcome startOutcome
	task    swarm.Task
}

// startState reads the tasks of a service being started: is one running, on
// its way, failed for good, or is none coming at all? Tasks older than the
// service's last update (since) that failed are history, not a verdict.
func startState(tasks []swarm.Task, since time.Time) startResult {
	var newest *swarm.Task
	for i, t := range tasks {
		if t.DesiredState == swarm.TaskStateRunning {
			if t.Status.State == swarm.TaskStateRunning {
				return startResult{outcome: taskRunning, task: t}
			}
			if terminal(t.Status.State) {
				continue // on its way out; the orchestrator replaces it
			}
			return startResult{outcome: taskPending, task: t}
		}
		if newest == nil || t.Meta.CreatedAt.After(newest.Meta.CreatedAt) {
			newest = &tasks[i]
		}
	}
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning && !terminal(t.Status.State) {
			// An old task still stopping: the scale-up waits for it.
			return startResult{outcome: taskPending, task: t}
		}
	}
	if newest != nil && !newest.Meta.CreatedAt.Before(since) &&
		(newest.Status.State == swarm.TaskStateFailed || newest.Status.State == swarm.TaskStateRejected) {
		return startResult{outcome: taskFailed, task: *newest}
	}
	return startResult{outcome: noTask}
}

func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// scale sets the replicas of a service; force > 0 also bumps ForceUpdate.
// It retries when the service changed under it (another writer).
func (s *Swarm) scale(ctx context.Context, id string, n uint64, force uint64) error {
	for attempt := 0; ; attempt++ {
		s.count("ServiceInspect")
		svc, _, err := s.cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return ErrNotFound
			}
			return err
		}
		if replicas(svc) == n && force == 0 {
			return nil
		}
		spec := svc.Spec
		if spec.Mode.Replicated == nil {
			return fmt.Errorf("service %s is not replicated", id)
		}
		spec.Mode.Replicated.Replicas = &n
		spec.TaskTemplate.ForceUpdate += force
		s.count("ServiceUpdate")
		_, err = s.cli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, s.updateOptions())
		if err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "out of sequence") || attempt >= maxAttempts {
			if cerrdefs.IsNotFound(err) {
				return ErrNotFound
			}
			return err
		}
		if err := pause(ctx, attempt); err != nil {
			return err
		}
	}
}

// updateOptions passes the credentials with an update, so that a changed
// credentials file reaches the service at its next start; without them (or
// when they cannot be read now) the engine keeps those the service has.
func (s *Swarm) updateOptions() swarm.ServiceUpdateOptions {
	opts := swarm.ServiceUpdateOptions{RegistryAuthFrom: swarm.RegistryAuthFromSpec}
	if s.Auth != nil {
		if a, err := s.Auth(); err == nil {
			opts.EncodedRegistryAuth = a
		}
	}
	return opts
}

func (s *Swarm) wait(ctx context.Context, attempt int) error {
	t := time.NewTimer(min(s.Poll<<min(attempt, 3), time.Second))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stop scales the service to 0 and waits until its task is gone (killed
// after timeout, as the local engine does); a missing service is success.
func (s *Swarm) Stop(ctx context.Context, id string, timeout time.Duration) error {
	err := s.scale(ctx, id, 0, 0)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop service %s: %w", id, err)
	}
	// The engine kills the task after its stop grace period; allow for
	// that and some scheduling.
	ctx, cancel := context.WithTimeout(ctx, timeout+time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, tasks, err := s.service(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stop service %s: %w", id, err)
		}
		if !slices.ContainsFunc(tasks, func(t swarm.Task) bool { return !terminal(t.Status.State) }) {
			return nil
		}
		if err := s.wait(ctx, attempt); err != nil {
			return fmt.Errorf("stop service %s: wait for its task to end: %w", id, err)
		}
	}
}

// Remove removes the service (its container goes with it, its mounts stay);
// a missing service is success.
func (s *Swarm) Remove(ctx context.Context, id string) error {
	s.count("ServiceRemove")
	if err := s.cli.ServiceRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove service %s: %w", id, err)
	}
	return nil
}
