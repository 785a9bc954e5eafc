package containers

import (
	"context"
	"errors"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nbhosting/nbh-sync/naming"
)

// rawOf is a managed container of student in flot, with the uid label
// when uid is not empty.
func rawOf(student, id, state, image, uid string, port int) Raw {
	r := Raw{ID: id, Name: naming.Container("flot", student), ImageID: image, EngineState: state,
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelCourse: "flot", LabelStudent: student, LabelPort: strconv.Itoa(port)},
		Ports:  map[int]int{8888: port}}
	if uid != "" {
		r.Labels[LabelUID] = uid
	}
	return r
}

// fixedUIDs is an allocator that gives every student the same uid.
type fixedUIDs int

func (f fixedUIDs) UID(string) (int, error) { return int(f), nil }

// A student's server never runs as root or a system account, whatever
// gave the uid: the spawn is refused before anything is made, started or
// removed, and the error says where the uid came from and what to do.
func TestSpawnRefusesLowUIDs(t *testing.T) {
	if _, err := user.Lookup("daemon"); err != nil {
		t.Skip("no host account named daemon")
	}
	tests := []struct {
		name     string
		student  string
		opts     SpawnOptions
		existing *Raw // the container the engine has, if any
		want     []string
	}{
		{name: "uid 0 given", student: "alice", opts: SpawnOptions{UID: "0"}, want: []string{"uid 0 (given to spawn) is root's", "uid of 1000 or more"}},
		{name: "system uid given", student: "alice", opts: SpawnOptions{UID: "999"}, want: []string{"uid 999 (given to spawn) is a system account's"}},
		{name: "student named root", student: "root", want: []string{"uid 0 (the host account named root) is root's", "students.uids"}},
		{name: "student named daemon", student: "daemon", want: []string{"(the host account named daemon) is a system account's"}},
		{name: "allocated below the floor", student: "nbhtest-nohost", opts: SpawnOptions{UIDs: fixedUIDs(500)}, want: []string{"uid 500 (allocated to nbhtest-nohost)"}},
		{name: "floor raised", student: "alice", opts: SpawnOptions{UID: "1500", MinUID: 2000}, want: []string{"never runs below uid 2000"}},
		{name: "running container labelled 0", student: "alice", opts: SpawnOptions{UID: "1234"},
			existing: new(rawOf("alice", "c1", "running", "sha256:v1", "0", 30001)), want: []string{"label of container flot-x-alice", "docker rm -f flot-x-alice"}},
		{name: "stale stopped container labelled 0", student: "alice",
			existing: new(rawOf("alice", "c1", "exited", "sha256:old", "0", 30001)), want: []string{"uid 0 (the org.nbhosting.uid label"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var acted []string
			eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
				InspectFn: func(context.Context, string) (Raw, error) {
					if tt.existing == nil {
						return Raw{}, ErrNotFound
					}
					return *tt.existing, nil
				},
				CreateFn: func(context.Context, Spec) (string, error) { acted = append(acted, "create"); return "x", nil },
				StartFn:  func(context.Context, string) error { acted = append(acted, "start"); return nil },
				RemoveFn: func(context.Context, string) error { acted = append(acted, "remove"); return nil },
			}
			opts := tt.opts
			opts.Root = t.TempDir()
			_, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), tt.student, opts)
			if !errors.Is(err, ErrBadUID) {
				t.Fatalf("err = %v, want ErrBadUID", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
			if len(acted) > 0 {
				t.Errorf("the engine was asked to %v", acted)
			}
		})
	}
}

// A stale stopped container made with a uid the API gave (no host account
// holds it) is made again with that uid, from its label: the front door
// re-creates it with no uid to give, and the student keeps the owner of
// their files.
func TestSpawnRecreatedKeepsLabelUID(t *testing.T) {
	const student = "nbhtest-nohost"
	if _, err := user.Lookup(student); err == nil {
		t.Skipf("a host account named %s exists", student)
	}
	var mu sync.Mutex
	var calls []string
	gone := false
	var spec Spec
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v2"),
		InspectFn: func(context.Context, string) (Raw, error) {
			mu.Lock()
			defer mu.Unlock()
			if gone {
				return Raw{}, ErrNotFound
			}
			return rawOf(student, "old", "exited", "sha256:v1", "1234", 1), nil
		},
		RemoveFn: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			calls, gone = append(calls, "remove "+id), true
			return nil
		},
		CreateFn: func(_ context.Context, s Spec) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			spec, calls = s, append(calls, "create "+s.Image)
			return "new", nil
		},
		StartFn: func(_ context.Context, id string) error {
			serveFake(t, spec.HostPort)
			return nil
		},
	}
	root := t.TempDir()
	got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), student, SpawnOptions{Root: root})
	if err != nil || got.State != Created || got.UID != "1234" {
		t.Fatalf("Spawn = %+v, %v; want created with uid 1234", got, err)
	}
	if want := []string{"remove old", "create sha256:v2"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
	if spec.Labels[LabelUID] != "1234" || !slices.Contains(spec.Cmd, "--uid=1234") {
		t.Errorf("made again with labels %v and command %v, want uid 1234", spec.Labels, spec.Cmd)
	}
	if uid := statUID(t, filepath.Join(root, "students", student, "flot")); uid != 1234 {
		t.Errorf("work dir owned by %d, want 1234", uid)
	}
}

// Under engine.adopt: false, an unlabelled container of the student's name
// (nbhosting's, or another tool's named alike) is neither used, started nor
// removed: the spawn says whose it may be and what to do.
func TestSpawnNoAdopt(t *testing.T) {
	for _, state := range []string{"running", "exited"} {
		t.Run(state, func(t *testing.T) {
			eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
				InspectFn: func(context.Context, string) (Raw, error) {
					return Raw{ID: "theirs", Name: "flot-x-alice", ImageID: "sha256:other", EngineState: state,
						Labels: map[string]string{}, Ports: map[int]int{8888: 30001}}, nil
				},
			}
			_, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir(), UID: "1234", NoAdopt: true})
			if !errors.Is(err, ErrNotManaged) || !strings.Contains(err.Error(), "engine.adopt: false") {
				t.Fatalf("err = %v, want ErrNotManaged naming engine.adopt", err)
			}
		})
	}
}
