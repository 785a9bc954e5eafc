package containers

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func svc(id, name string, replicas uint64) swarm.Service {
	s := swarm.Service{ID: id}
	s.Spec.Name = name
	s.Spec.Labels = map[string]string{LabelManagedBy: ManagedBy, LabelCourse: "c", LabelStudent: name}
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "reg/i@sha256:1"}
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	return s
}

func task(service, node string, desired, state swarm.TaskState, created time.Time, port uint32) swarm.Task {
	t := swarm.Task{ServiceID: service, NodeID: node, DesiredState: desired}
	t.Meta.CreatedAt = created
	t.Status.State = state
	t.Status.Timestamp = created.Add(time.Second)
	t.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: "ctr-" + service + "-" + node}
	if port != 0 {
		t.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8888, PublishedPort: port}}
	}
	return t
}

// TestObserve: services, tasks and nodes from the three list calls become
// the Raws a pass classifies: scaled to 0 is stopped; at 1 replica, running
// with the node's address and the task's host port once the task meant to
// run runs, "restarting" (counted as running) before; old tasks are
// history.
func TestObserve(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	nodes := []swarm.Node{{ID: "n1", Status: swarm.NodeStatus{Addr: "10.0.0.1"}}, {ID: "n2", Status: swarm.NodeStatus{Addr: "10.0.0.2"}}}
	R, S := swarm.TaskStateRunning, swarm.TaskStateShutdown
	tests := []struct {
		name      string
		svc       swarm.Service
		tasks     []swarm.Task
		wantState string
		wantHost  string
		wantPort  int
	}{
		{"scaled to 0", svc("s1", "a", 0), []swarm.Task{task("s1", "n1", S, S, t0, 0)}, "exited", "", 0},
		{"scaled to 0, old task still stopping", svc("s1", "a", 0), []swarm.Task{task("s1", "n1", S, R, t0, 30001)}, "exited", "", 0},
		{"running on n2", svc("s1", "a", 1), []swarm.Task{
			task("s1", "n1", S, S, t0, 0),
			task("s1", "n2", R, R, t0.Add(time.Minute), 30002),
		}, "running", "10.0.0.2", 30002},
		{"newest task meant to run wins", svc("s1", "a", 1), []swarm.Task{
			task("s1", "n1", R, R, t0, 30001),
			task("s1", "n2", R, R, t0.Add(time.Minute), 30002),
		}, "running", "10.0.0.2", 30002},
		{"IPv4 and IPv6 bindings: the first (IPv4) one", svc("s1", "a", 1), []swarm.Task{func() swarm.Task {
			tk := task("s1", "n1", R, R, t0, 32779)
			tk.Status.PortStatus.Ports = append(tk.Status.PortStatus.Ports, swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP, TargetPort: 8888, PublishedPort: 32778})
			return tk
		}()}, "running", "10.0.0.1", 32779},
		{"scheduled, not running yet", svc("s1", "a", 1), []swarm.Task{task("s1", "n1", R, swarm.TaskStatePreparing, t0, 0)}, "restarting", "", 0},
		{"no task yet", svc("s1", "a", 1), nil, "restarting", "", 0},
		{"another service's task", svc("s1", "a", 1), []swarm.Task{task("s2", "n1", R, R, t0, 30001)}, "restarting", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := observe([]swarm.Service{tt.svc}, tt.tasks, nodes)
			if len(rs) != 1 {
				t.Fatalf("%d raws", len(rs))
			}
			r := rs[0]
			if r.EngineState != tt.wantState || r.Host != tt.wantHost || r.Ports[8888] != tt.wantPort {
				t.Errorf("state %q host %q port %d; want %q %q %d", r.EngineState, r.Host, r.Ports[8888], tt.wantState, tt.wantHost, tt.wantPort)
			}
			if r.ID != "s1" || r.Name != "a" || r.ImageID != "reg/i@sha256:1" || r.Labels[LabelStudent] != "a" {
				t.Errorf("raw %+v", r)
			}
			c, ok := classify(r, t0.Add(time.Hour))
			if !ok || (c.State == Running) != (tt.wantState != "exited") || c.Host != tt.wantHost {
				t.Errorf("classified %+v, %v", c, ok)
			}
			if tt.wantState == "running" && !c.StartedAt.Equal(tt.tasks[len(tt.tasks)-1].Status.Timestamp) {
				t.Errorf("started at %s, want the task's running timestamp", c.StartedAt)
			}
			// The CPU time of a running server is its task container's
			// (ID is the service's, which no engine has stats of).
			if tt.wantState == "running" {
				if want := tt.tasks[len(tt.tasks)-1].Status.ContainerStatus.ContainerID; c.CPUID() != want {
					t.Errorf("CPU read from %q, want the task's container %q", c.CPUID(), want)
				}
			}
		})
	}
}

// TestStartState: what Start makes of the tasks of a service it scaled up,
// in particular the lost scale-up (nothing meant to run, nothing stopping),
// which it answers with a forced update.
func TestStartState(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	since := t0.Add(time.Minute) // the scale-up
	R, S := swarm.TaskStateRunning, swarm.TaskStateShutdown
	tests := []struct {
		name  string
		tasks []swarm.Task
		want  startOutcome
	}{
		{"running", []swarm.Task{task("s", "n", R, R, since, 1)}, taskRunning},
		{"new task on its way", []swarm.Task{task("s", "n", R, swarm.TaskStatePending, since, 0)}, taskPending},
		{"old task still stopping", []swarm.Task{task("s", "n", S, R, t0, 1)}, taskPending},
		{"lost scale-up: old task gone, none new", []swarm.Task{task("s", "n", S, S, t0, 0)}, noTask},
		{"lost scale-up: no task at all", nil, noTask},
		{"replacement waiting out the restart delay", []swarm.Task{
			task("s", "n", S, swarm.TaskStateFailed, since, 0),
			task("s", "n", swarm.TaskStateReady, swarm.TaskStateNew, since.Add(time.Second), 0),
		}, taskPending},
		{"failed after the scale-up, none replaces it", []swarm.Task{task("s", "n", S, swarm.TaskStateRejected, since.Add(time.Second), 0)}, taskFailed},
		{"failure from before the scale-up is history", []swarm.Task{task("s", "n", S, swarm.TaskStateFailed, t0, 0)}, noTask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := startState(tt.tasks, since).outcome; got != tt.want {
				t.Errorf("outcome %d, want %d", got, tt.want)
			}
		})
	}
}

// TestBindMounts: binds become bind mounts; read-only kept; bad ones refused.
func TestBindMounts(t *testing.T) {
	ms, err := bindMounts([]string{"/srv/s/a/c:/home/jovyan/work", "/srv/c:/home/jovyan/course:ro"})
	if err != nil || len(ms) != 2 || ms[0].ReadOnly || !ms[1].ReadOnly || ms[1].Source != "/srv/c" || ms[1].Target != "/home/jovyan/course" {
		t.Fatalf("%+v, %v", ms, err)
	}
	if _, err := bindMounts([]string{"/a:/b:rx"}); err == nil {
		t.Error("bad mode accepted")
	}
}
