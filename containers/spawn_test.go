package containers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/preset"
)

// serveFake serves a fake Jupyter on 127.0.0.1:port under /{port}/ until
// the test ends.
func serveFake(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("serve fake on %d: %v", port, err)
	}
	srv := &http.Server{Handler: fakejupyter.New(naming.BasePath(port), "", nil)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func testCourse() manifest.Course {
	return manifest.Course{Name: "flot", Container: manifest.Container{
		Port:    8888,
		Memory:  512 << 20,
		Command: []string{"/fakejupyter", "--base-url=/{port}/", "--uid={uid}"},
		Mounts:  []string{"{root}/students/{student}/{course}:/home/jovyan/work"},
		Env:     map[string]string{"WHO": "{student}@{course}"},
	}}
}

// latestImage answers flot:latest with id, built by nbh-sync (its build
// labels), or nothing when id is empty.
func latestImage(id string) func(context.Context, []string) (map[string]Image, error) {
	return imagesLabelled(id, map[string]string{images.LabelImage: "flot", images.LabelBuildKey: "0123456789abcdef"})
}

// imagesLabelled answers flot:latest with id and labels.
func imagesLabelled(id string, labels map[string]string) func(context.Context, []string) (map[string]Image, error) {
	return func(_ context.Context, refs []string) (map[string]Image, error) {
		if !slices.Equal(refs, []string{"flot:latest"}) {
			return nil, errors.New("unexpected refs")
		}
		if id == "" {
			return map[string]Image{}, nil
		}
		return map[string]Image{"flot:latest": {ID: id, Labels: labels}}, nil
	}
}

func managedRaw(id, state, image string, port int) Raw {
	return Raw{ID: id, Name: "flot-x-alice", ImageID: image, EngineState: state,
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelCourse: "flot", LabelStudent: "alice", LabelPort: strconv.Itoa(port)},
		Ports:  map[int]int{8888: port}}
}

func notFound(context.Context, string) (Raw, error) { return Raw{}, ErrNotFound }

func TestSpawnCreates(t *testing.T) {
	root := t.TempDir()
	var spec Spec
	eng := &fakeEngine{
		ImagesFn:  latestImage("sha256:v1"),
		InspectFn: notFound,
		CreateFn:  func(_ context.Context, s Spec) (string, error) { spec = s; return "new", nil },
		StartFn:   func(context.Context, string) error { serveFake(t, spec.HostPort); return nil },
	}
	m := New(eng, nil, nil)
	got, err := m.Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: root, UID: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	p := spec.HostPort
	want := Spawned{Name: "flot-x-alice", ID: "new", State: Created, Port: p, URL: "http://127.0.0.1:" + strconv.Itoa(p) + "/" + strconv.Itoa(p) + "/", BasePath: "/" + strconv.Itoa(p) + "/", UID: "1234"}
	if got != want {
		t.Errorf("Spawn = %+v, want %+v", got, want)
	}
	ps := strconv.Itoa(p)
	if spec.Image != "sha256:v1" || spec.Name != "flot-x-alice" || spec.HostIP != "127.0.0.1" || spec.Memory != 512<<20 ||
		!slices.Equal(spec.Cmd, []string{"/fakejupyter", "--base-url=/" + ps + "/", "--uid=1234"}) ||
		!slices.Equal(spec.Binds, []string{root + "/students/alice/flot:/home/jovyan/work"}) ||
		!slices.Equal(spec.Env, []string{"WHO=alice@flot"}) ||
		spec.Labels[LabelPort] != ps || spec.Labels[LabelUID] != "1234" || spec.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("spec = %+v", spec)
	}
	st, err := os.Stat(filepath.Join(root, "students", "alice", "flot"))
	if err != nil || !st.IsDir() {
		t.Fatalf("work dir: %v", err)
	}
	if uid := statUID(t, filepath.Join(root, "students", "alice", "flot")); uid != 1234 {
		t.Errorf("work dir owned by %d, want 1234", uid)
	}
	if m.Locks().HandedOut("flot", "alice").IsZero() {
		t.Error("hand-out not recorded")
	}
}

func TestSpawnExistingAndStarted(t *testing.T) {
	p := mustFreePort(t)
	serveFake(t, p)
	t.Run("running is used as is", func(t *testing.T) {
		eng := &fakeEngine{ImagesFn: latestImage("sha256:v2"),
			InspectFn: func(context.Context, string) (Raw, error) { return managedRaw("c1", "running", "sha256:v1", p), nil }}
		got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir()})
		if err != nil || got.State != Existing || got.ID != "c1" || got.Port != p {
			t.Fatalf("Spawn = %+v, %v", got, err)
		}
	})
	t.Run("stopped on current image and settings is started", func(t *testing.T) {
		var started []string
		r := managedRaw("c1", "exited", "sha256:v1", p)
		r.Labels[LabelSettings] = SettingsKey(testCourse().Container)
		eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
			InspectFn: func(context.Context, string) (Raw, error) { return r, nil },
			StartFn:   func(_ context.Context, id string) error { started = append(started, id); return nil }}
		got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir()})
		if err != nil || got.State != Started || !slices.Equal(started, []string{"c1"}) {
			t.Fatalf("Spawn = %+v, %v (started %v)", got, err, started)
		}
	})
}

// A stopped container on an old image, or made with container: settings
// edited since, is made anew (the student's files are on the host).
func TestSpawnStaleIsRecreated(t *testing.T) {
	t.Run("old image", func(t *testing.T) { spawnRecreates(t, managedRaw("old", "exited", "sha256:v1", 1)) })
	t.Run("settings edited since", func(t *testing.T) {
		old := managedRaw("old", "exited", "sha256:v2", 1)
		old.Labels[LabelSettings] = "0123456789ab"
		spawnRecreates(t, old)
	})
}

func spawnRecreates(t *testing.T, old Raw) {
	var calls []string
	gone := false
	var spec Spec
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v2"),
		InspectFn: func(context.Context, string) (Raw, error) {
			if gone {
				return Raw{}, ErrNotFound
			}
			return old, nil
		},
		RemoveFn: func(_ context.Context, id string) error { calls = append(calls, "remove "+id); gone = true; return nil },
		CreateFn: func(_ context.Context, s Spec) (string, error) {
			spec = s
			calls = append(calls, "create "+s.Image)
			return "new", nil
		},
		StartFn: func(_ context.Context, id string) error {
			calls = append(calls, "start "+id)
			serveFake(t, spec.HostPort)
			return nil
		},
	}
	got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"})
	if err != nil || got.State != Created || got.ID != "new" {
		t.Fatalf("Spawn = %+v, %v", got, err)
	}
	if want := []string{"remove old", "create sha256:v2", "start new"}; !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
	if spec.Labels[LabelSettings] != SettingsKey(testCourse().Container) {
		t.Errorf("settings label %q, want the course's key", spec.Labels[LabelSettings])
	}
}

func TestSpawnLosesNameRace(t *testing.T) {
	p := mustFreePort(t)
	serveFake(t, p)
	inspects := 0
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
		InspectFn: func(context.Context, string) (Raw, error) {
			inspects++
			if inspects == 1 {
				return Raw{}, ErrNotFound
			}
			return managedRaw("theirs", "running", "sha256:v1", p), nil
		},
		CreateFn: func(context.Context, Spec) (string, error) { return "", ErrConflict },
	}
	got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"})
	if err != nil || got.State != Existing || got.ID != "theirs" {
		t.Fatalf("Spawn = %+v, %v", got, err)
	}
}

func TestSpawnRetriesTakenPort(t *testing.T) {
	var specs []Spec
	var removed []string
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"), InspectFn: notFound,
		CreateFn: func(_ context.Context, s Spec) (string, error) {
			specs = append(specs, s)
			return "c" + strconv.Itoa(len(specs)), nil
		},
		StartFn: func(_ context.Context, id string) error {
			if id == "c1" {
				return ErrPortInUse
			}
			serveFake(t, specs[len(specs)-1].HostPort)
			return nil
		},
		RemoveFn: func(_ context.Context, id string) error { removed = append(removed, id); return nil },
	}
	got, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"})
	if err != nil || got.ID != "c2" || !slices.Equal(removed, []string{"c1"}) {
		t.Fatalf("Spawn = %+v, %v; removed %v", got, err, removed)
	}
	if specs[1].Labels[LabelPort] != strconv.Itoa(got.Port) || specs[1].Cmd[1] != "--base-url=/"+strconv.Itoa(got.Port)+"/" {
		t.Errorf("second spec does not use the new port %d: %+v", got.Port, specs[1])
	}
}

func TestSpawnErrors(t *testing.T) {
	archived := testCourse()
	archived.Archived = true
	noUID := testCourse()
	socketMount := testCourse()
	socketMount.Container.Mounts = []string{"{root}/students/{student}/{course}:/home/jovyan/work", "/run/docker.sock:/var/run/docker.sock"}
	for _, tc := range []struct {
		desc    string
		co      manifest.Course
		student string
		opts    SpawnOptions
		eng     *fakeEngine
		want    error
	}{
		{"unknown course", manifest.Course{}, "alice", SpawnOptions{Root: "/srv"}, &fakeEngine{}, manifest.ErrUnknownCourse},
		{"archived", archived, "alice", SpawnOptions{Root: "/srv"}, &fakeEngine{}, manifest.ErrArchived},
		{"path escape", testCourse(), "../root", SpawnOptions{Root: "/srv"}, &fakeEngine{}, naming.ErrBadStudent},
		{"not built", testCourse(), "alice", SpawnOptions{Root: "/srv"}, &fakeEngine{ImagesFn: latestImage("")}, ErrImageNotBuilt},
		// A same-named image nbh-sync did not build (a docker import, a
		// pull) is never run, nor one built for another image name.
		{"foreign image", testCourse(), "alice", SpawnOptions{Root: "/srv"},
			&fakeEngine{ImagesFn: imagesLabelled("sha256:f", nil)}, ErrImageNotBuilt},
		{"image of another name", testCourse(), "alice", SpawnOptions{Root: "/srv"},
			&fakeEngine{ImagesFn: imagesLabelled("sha256:f", map[string]string{images.LabelImage: "other", images.LabelBuildKey: "0123456789abcdef"})}, ErrImageNotBuilt},
		// Names that would collide with another course's (a + x-y and
		// a-x + y are both a-x-x-y).
		{"student starting x-", testCourse(), "x-y", SpawnOptions{Root: "/srv"}, &fakeEngine{}, naming.ErrBadStudent},
		{"student with -x-", testCourse(), "b-x-c", SpawnOptions{Root: "/srv"}, &fakeEngine{}, naming.ErrBadStudent},
		// A mount validation would refuse is refused once expanded too,
		// before anything is made (the fake has no Create).
		{"engine socket mount", socketMount, "alice", SpawnOptions{Root: t.TempDir(), UID: "1000"},
			&fakeEngine{ImagesFn: latestImage("sha256:v1"), InspectFn: notFound}, nil},
		{"foreign container", testCourse(), "alice", SpawnOptions{Root: "/srv"}, &fakeEngine{ImagesFn: latestImage("sha256:v1"),
			InspectFn: func(context.Context, string) (Raw, error) {
				return Raw{ID: "x", Name: "flot-x-alice", Labels: map[string]string{LabelManagedBy: "other"}}, nil
			}}, ErrNotManaged},
		{"no uid", noUID, "nbh-no-such-user", SpawnOptions{Root: t.TempDir()}, &fakeEngine{ImagesFn: latestImage("sha256:v1"), InspectFn: notFound}, nil},
	} {
		_, err := New(tc.eng, nil, nil).Spawn(t.Context(), tc.co, tc.student, tc.opts)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.desc, err, tc.want)
		}
	}
}

func TestSpawnTimeout(t *testing.T) {
	p := mustFreePort(t) // nothing listens there
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
		InspectFn: func(context.Context, string) (Raw, error) { return managedRaw("c1", "running", "sha256:v1", p), nil }}
	m := New(eng, nil, nil)
	m.ReadyTimeout = 200 * time.Millisecond
	_, err := m.Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir()})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestLocksSerialize(t *testing.T) {
	l := NewLocks()
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			unlock, err := l.Lock(t.Context(), "c", "s")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		})
	}
	wg.Wait()
	if maxInside != 1 {
		t.Errorf("%d holders at once", maxInside)
	}
	unlock, _ := l.Lock(t.Context(), "c", "s")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "c", "s"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock on a held key = %v, want deadline exceeded", err)
	}
	if _, err := l.Lock(t.Context(), "c", "other"); err != nil {
		t.Errorf("another key is blocked: %v", err)
	}
	unlock()
}

func mustFreePort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fixedTokens map[string]string

func (f fixedTokens) For(course, student string) (string, error) {
	if t, ok := f[course+"/"+student]; ok {
		return t, nil
	}
	return "", errors.New("no key")
}

// TestSpecRunsTheWayImagesExpect: by default a container runs as root with
// no entrypoint (nbhosting's --user root --entrypoint=) and gets its Jupyter
// token in JUPYTER_TOKEN; courses.yaml can say otherwise.
func TestSpecRunsTheWayImagesExpect(t *testing.T) {
	v := Vars{Root: "/srv", Course: "flot", Student: "alice", UID: "1234", Port: 30001}
	pre := preset.Additions{
		Binds: []string{"/srv/courses/flot/modules:/home/jovyan/modules:ro", "/srv/courses/flot/data:/home/jovyan/work:ro"},
		Env:   map[string]string{"PYTHONPATH": "/home/jovyan/modules", "NBAUTOEVAL_LOG": "/home/jovyan/work/.nbautoeval"},
	}
	tests := []struct {
		name       string
		cc         manifest.Container
		token      string
		pre        preset.Additions
		user       string
		entrypoint []string
		env        []string
		binds      []string
	}{
		{name: "defaults", token: "tok", user: "0", entrypoint: []string{}, env: []string{"JUPYTER_TOKEN=tok"}},
		{name: "no token", user: "0", entrypoint: []string{}},
		{name: "user and entrypoint set", cc: manifest.Container{User: "{uid}", Entrypoint: []string{"tini", "-g", "--"}},
			user: "1234", entrypoint: []string{"tini", "-g", "--"}},
		{name: "the course's env wins over the token and the preset", token: "tok", pre: pre,
			cc:   manifest.Container{Env: map[string]string{"JUPYTER_TOKEN": "mine", "PYTHONPATH": "/opt/lib"}, Mounts: []string{"{root}/students/{student}/{course}:/home/jovyan/work"}},
			user: "0", entrypoint: []string{},
			env:   []string{"JUPYTER_TOKEN=mine", "NBAUTOEVAL_LOG=/home/jovyan/work/.nbautoeval", "PYTHONPATH=/opt/lib"},
			binds: []string{"/srv/students/alice/flot:/home/jovyan/work", "/srv/courses/flot/modules:/home/jovyan/modules:ro"}},
	}
	m := New(&fakeEngine{}, nil, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := m.spec(manifest.Course{Name: "flot", Container: tt.cc}, "alice", "sha256:x", v, tt.token, tt.pre)
			if s.User != tt.user || !slices.Equal(s.Entrypoint, tt.entrypoint) || s.Entrypoint == nil ||
				!slices.Equal(s.Env, tt.env) || !slices.Equal(s.Binds, tt.binds) {
				t.Errorf("spec: user %q entrypoint %q env %q binds %q\nwant: user %q entrypoint %q env %q binds %q",
					s.User, s.Entrypoint, s.Env, s.Binds, tt.user, tt.entrypoint, tt.env, tt.binds)
			}
		})
	}
}

// TestSpecLandsOnTheCoursesUI: ui lab or classic tells the server where
// to land; auto leaves it to the image, and a command that names
// default_url itself is left as written (Jupyter refuses it twice).
func TestSpecLandsOnTheCoursesUI(t *testing.T) {
	v := Vars{Root: "/srv", Course: "flot", Student: "alice", UID: "1234", Port: 30001}
	own := []string{"jupyter", "notebook", "--NotebookApp.default_url=/tree"}
	tests := []struct {
		ui      manifest.UI
		command []string
		want    []string
	}{
		{manifest.UIAuto, nil, manifest.DefaultCommand},
		{"", nil, manifest.DefaultCommand},
		{manifest.UILab, nil, append(slices.Clone(manifest.DefaultCommand), "--ServerApp.default_url=/lab")},
		{manifest.UIClassic, nil, append(slices.Clone(manifest.DefaultCommand), "--ServerApp.default_url=/tree")},
		{manifest.UILab, own, own},
	}
	m := New(&fakeEngine{}, nil, nil)
	for _, tt := range tests {
		cmd := tt.command
		if cmd == nil {
			cmd = manifest.DefaultCommand
		}
		s := m.spec(manifest.Course{Name: "flot", UI: tt.ui, Container: manifest.Container{Command: cmd}}, "alice", "sha256:x", v, "", preset.Additions{})
		want := make([]string, len(tt.want))
		for i, a := range tt.want {
			want[i] = v.Expand(a)
		}
		if !slices.Equal(s.Cmd, want) {
			t.Errorf("ui %q, command %q:\n got %q\nwant %q", tt.ui, cmd, s.Cmd, want)
		}
	}
}

// TestTokenOfACourse: the token a spawn hands out and the pass probes with
// is the one courses.yaml sets, else the one the site key derives.
func TestTokenOfACourse(t *testing.T) {
	m := New(&fakeEngine{}, nil, nil)
	v := Vars{Root: "/srv", Course: "flot", Student: "alice", UID: "1234", Port: 30001}
	if tok, err := m.Token(manifest.Container{}, v); err != nil || tok != "" {
		t.Errorf("no source, no setting: %q, %v", tok, err)
	}
	m.Tokens = fixedTokens{"flot/alice": "derived"}
	tests := []struct {
		cc   manifest.Container
		want string
	}{
		{manifest.Container{}, "derived"},
		{manifest.Container{Token: "t-{student}-{uid}"}, "t-alice-1234"},
	}
	for _, tt := range tests {
		if tok, err := m.Token(tt.cc, v); err != nil || tok != tt.want {
			t.Errorf("Token(%+v) = %q, %v; want %q", tt.cc, tok, err, tt.want)
		}
	}
	if _, err := m.Token(manifest.Container{}, Vars{Course: "flot", Student: "bob"}); err == nil {
		t.Error("a failing source gave no error")
	}
}

// TestSpawnForeignImageMessage: the refusal says what is wrong and what to
// run, and no container is made (the fake has no Inspect or Create).
func TestSpawnForeignImageMessage(t *testing.T) {
	eng := &fakeEngine{ImagesFn: imagesLabelled("sha256:f", map[string]string{"maintainer": "someone"})}
	_, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: "/srv"})
	const want = "image flot:latest was not built by this site (no org.nbhosting.build-key label) — run `nbh-sync build flot`"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to say %q", err, want)
	}
}

// Prepare runs before a server starts — created or started again — with
// the uid it runs as, and never for a server that runs; its error fails
// the spawn before anything starts.
func TestSpawnPrepare(t *testing.T) {
	p := mustFreePort(t)
	serveFake(t, p)
	withUID := func(r Raw) Raw { r.Labels[LabelUID] = "1234"; return r }
	for _, tc := range []struct {
		name    string
		state   string // of the container found; "" for none
		fail    bool
		want    string // the uid Prepare got; "-" when it must not run
		starts  int
		wantErr bool
	}{
		{name: "created", want: "1234", starts: 1},
		{name: "started again", state: "exited", want: "1234", starts: 1},
		{name: "running: left alone", state: "running", want: "-"},
		{name: "failure stops the spawn", fail: true, want: "1234", wantErr: true},
		{name: "failure before a start", state: "exited", fail: true, want: "1234", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var spec Spec
			starts := 0
			eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"),
				InspectFn: func(context.Context, string) (Raw, error) {
					if tc.state == "" || spec.Name != "" {
						if spec.Name != "" {
							return withUID(managedRaw("new", "running", "sha256:v1", spec.HostPort)), nil
						}
						return Raw{}, ErrNotFound
					}
					return withUID(managedRaw("c1", tc.state, "sha256:v1", p)), nil
				},
				CreateFn: func(_ context.Context, s Spec) (string, error) { spec = s; return "new", nil },
				StartFn: func(context.Context, string) error {
					starts++
					if spec.HostPort != 0 {
						serveFake(t, spec.HostPort)
					}
					return nil
				}}
			got := "-"
			prepare := func(_ context.Context, uid, gid string) error {
				got = uid + ":" + gid
				if tc.fail {
					return errors.New("disk full")
				}
				return nil
			}
			_, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: t.TempDir(), UID: "1234", Prepare: prepare})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Spawn: %v, want error %v", err, tc.wantErr)
			}
			if want := tc.want; want != "-" && got != want+":"+want || want == "-" && got != "-" {
				t.Errorf("Prepare got %q, want %q", got, want)
			}
			if tc.wantErr && starts != 0 || !tc.wantErr && starts != tc.starts {
				t.Errorf("%d starts, want %d", starts, tc.starts)
			}
		})
	}
}
