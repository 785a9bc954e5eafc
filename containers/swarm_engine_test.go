package containers_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/naming"
)

// TestSwarmEngineContract holds the Swarm engine to the Engine contract on
// the real swarm: Inspect of a missing service is ErrNotFound, Create of a
// taken name ErrConflict, Stop and Remove of a missing service succeed;
// Create leaves the service at 0 replicas with the container labels on the
// container spec and restart on failure; Start runs it with a port, also
// right after a scale-down the test sends without waiting (the old task
// still stopping: the case where a scale-up can get lost).
func TestSwarmEngineContract(t *testing.T) {
	cli, reg := requireSwarm(t)
	ctx := t.Context()
	prefix := fmt.Sprintf("nbhtest-swc%d", time.Now().UnixNano()%1e8)
	img := prefix + "-img"
	cleanupSwarm(t, cli, prefix, img, reg)
	ref := pushFakeImage(t, cli, reg, img, img)
	eng := containers.NewSwarm(cli, reg, "")
	name := naming.Container(prefix, "alice")

	if _, err := eng.Inspect(ctx, name); !errors.Is(err, containers.ErrNotFound) {
		t.Fatalf("inspect of a missing service: %v, want ErrNotFound", err)
	}
	if err := eng.Stop(ctx, name, time.Second); err != nil {
		t.Errorf("stop of a missing service: %v", err)
	}
	if err := eng.Remove(ctx, name); err != nil {
		t.Errorf("remove of a missing service: %v", err)
	}

	labels := map[string]string{containers.LabelManagedBy: containers.ManagedBy, containers.LabelCourse: prefix,
		containers.LabelStudent: "alice", containers.LabelBasePath: "/u/x/alice/"}
	spec := containers.Spec{Name: name, Image: ref, Cmd: []string{"/fakejupyter", "--port=8888", "--base-url=/u/x/alice/"},
		Labels: labels, Port: 8888, Memory: 64 << 20, CPUs: 0.5, Constraints: []string{"node.role==manager"}}
	id, err := eng.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Create(ctx, spec); !errors.Is(err, containers.ErrConflict) {
		t.Errorf("create of a taken name: %v, want ErrConflict", err)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ts := svc.Spec.TaskTemplate
	if r := svc.Spec.Mode.Replicated.Replicas; *r != 0 || ts.ContainerSpec.Labels[containers.LabelStudent] != "alice" ||
		ts.RestartPolicy.Condition != swarm.RestartPolicyConditionOnFailure || ts.Resources.Limits.MemoryBytes != 64<<20 ||
		ts.Resources.Limits.NanoCPUs != 5e8 || len(ts.Placement.Constraints) != 1 ||
		svc.Spec.EndpointSpec.Ports[0].PublishMode != swarm.PortConfigPublishModeHost {
		t.Errorf("created service spec: replicas %d, %+v, endpoint %+v", *svc.Spec.Mode.Replicated.Replicas, ts, svc.Spec.EndpointSpec)
	}
	if r, err := eng.Inspect(ctx, name); err != nil || r.EngineState != "exited" {
		t.Errorf("created service: %+v, %v; want exited (0 replicas)", r, err)
	}

	running := func(what string) containers.Raw {
		t.Helper()
		if err := eng.Start(ctx, id); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r, err := eng.Inspect(ctx, name)
		if err != nil || r.EngineState != "running" || r.Ports[8888] == 0 || r.Host == "" || r.StartedAt.IsZero() {
			t.Fatalf("%s: %+v, %v; want running with host, port and start time", what, r, err)
		}
		return r
	}
	first := running("start")

	// Scale down behind the engine's back and start at once.
	zero := uint64(0)
	svc, _, _ = cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	svc.Spec.Mode.Replicated.Replicas = &zero
	if _, err := cli.ServiceUpdate(ctx, id, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	updates := 0
	eng.Calls = func(op string) {
		if op == "ServiceUpdate" {
			updates++ // Start runs in this goroutine
		}
	}
	again := running("start while the old task stops")
	eng.Calls = nil
	t.Logf("start while the old task stops: %d service updates (more than 1: the scale-up was lost and forced)", updates)
	if again.StartedAt.Equal(first.StartedAt) {
		t.Errorf("started again at the same time as the first task: not a new task")
	}

	if err := eng.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if r, err := eng.Inspect(ctx, name); err != nil || r.EngineState != "exited" {
		t.Errorf("stopped service: %+v, %v; want exited", r, err)
	}
	if err := eng.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Inspect(ctx, name); !errors.Is(err, containers.ErrNotFound) {
		t.Errorf("inspect after remove: %v, want ErrNotFound", err)
	}
}
