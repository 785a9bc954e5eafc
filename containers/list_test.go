package containers

import (
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/naming"
)

func TestInternerRaw(t *testing.T) {
	sum := func(name string, labels map[string]string, ports ...container.Port) *container.Summary {
		return &container.Summary{ID: "id-" + name, Names: []string{"/" + name}, ImageID: "sha256:abc",
			State: "running", Status: "Up 3 hours", Created: 1700000000, Labels: labels, Ports: ports}
	}
	for _, tc := range []struct {
		name string
		in   *container.Summary
		want Raw
	}{{
		name: "ours: image labels dropped",
		in: sum("c-x-alice", map[string]string{LabelCourse: "c", LabelStudent: "alice", LabelManagedBy: ManagedBy, LabelSite: "s",
			"maintainer": "Jupyter Project", "org.opencontainers.image.source": "x"},
			container.Port{PrivatePort: 8888, PublicPort: 32001, Type: "tcp"}, container.Port{PrivatePort: 8888, Type: "tcp"}),
		want: Raw{ID: "id-c-x-alice", Name: "c-x-alice", ImageID: "sha256:abc", EngineState: "running", Status: "Up 3 hours",
			Created: time.Unix(1700000000, 0), Labels: map[string]string{LabelCourse: "c", LabelStudent: "alice", LabelManagedBy: ManagedBy, LabelSite: "s"},
			Ports: map[int]int{8888: 32001}},
	}, {
		name: "unlabelled (nbhosting's): no labels, udp and unpublished ports ignored",
		in: sum("c-x-bob", map[string]string{"maintainer": "x"},
			container.Port{PrivatePort: 53, PublicPort: 53, Type: "udp"}, container.Port{PrivatePort: 8888, Type: "tcp"}),
		want: Raw{ID: "id-c-x-bob", Name: "c-x-bob", ImageID: "sha256:abc", EngineState: "running", Status: "Up 3 hours",
			Created: time.Unix(1700000000, 0)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var in interner
			if got := in.rawOf(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("raw =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// TestEngineListStreamMatchesSDK: the streamed list says what the SDK's
// ContainerList says, container for container, on the real engine.
func TestEngineListStreamMatchesSDK(t *testing.T) {
	co, imageID, m, cli := testSite(t)
	ctx := t.Context()
	if u, err := client.ParseHostURL(cli.DaemonHost()); err != nil || u.Scheme != "unix" {
		t.Skipf("engine at %s: List streams only on a socket", cli.DaemonHost())
	}
	if _, err := m.Spawn(ctx, co, "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"}); err != nil {
		t.Fatal(err)
	}
	// The engine is shared: another test's container may start or stop
	// while the lists are taken. Only a container the SDK reports the same
	// before and after the streamed list is compared.
	var in interner
	sdkList := func() map[string]Raw {
		t.Helper()
		sums, err := cli.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]Raw, len(sums))
		for i := range sums {
			r := in.rawOf(&sums[i])
			r.Status = "" // "Up 2 seconds" ticks between calls
			out[r.ID] = r
		}
		return out
	}
	before := sdkList()
	streamed, err := NewDocker(cli).listStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := sdkList()
	found, compared := false, 0
	for _, got := range streamed {
		want, ok := after[got.ID]
		if !ok || !reflect.DeepEqual(want, before[got.ID]) {
			continue // made, changed or removed by another test meanwhile
		}
		compared++
		got.Status = ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("container %s:\nstreamed %+v\nSDK      %+v", want.Name, got, want)
		}
		if want.Name == naming.Container(co.Name, "alice") {
			found = true
			if got.ImageID != imageID || got.Labels[LabelCourse] != co.Name || len(got.Ports) != 1 {
				t.Errorf("alice's container = %+v", got)
			}
		}
	}
	t.Logf("%d of %d streamed containers compared", compared, len(streamed))
	if !found {
		t.Errorf("alice's container missing from the SDK's list")
	}
}
