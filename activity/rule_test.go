package activity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/rootdir"
)

func TestHoldsAndIdle(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 30, 0, 0, time.UTC)
	old := t0.Add(-3 * time.Hour)
	for _, tc := range []struct {
		desc  string
		r     Result
		holds []string
		idle  bool
	}{
		{"nothing holds an old server", Result{State: Answered, Kernels: 1, LastActivity: old}, nil, true},
		{"recent activity: not idle, nothing holds", Result{State: Answered, Kernels: 1, LastActivity: t0.Add(-time.Minute)}, nil, false},
		{"busy kernel", Result{State: Answered, Busy: true, Kernels: 1, LastActivity: old}, []string{"a kernel is busy"}, false},
		{"one open connection", Result{State: Answered, Kernels: 1, Connections: 1, LastActivity: old}, []string{"1 open connection"}, false},
		{"three open connections", Result{State: Answered, Kernels: 2, Connections: 3, LastActivity: old}, []string{"3 open connections"}, false},
		{"kernel seen busy, silent since", Result{State: Answered, Kernels: 1, SeenBusy: t0.Add(-28 * time.Minute), LastActivity: old},
			[]string{"kernel seen busy at 10:02 UTC, silent since"}, false},
		{"CPU above the threshold", Result{State: Answered, LastActivity: old, CPU: &CPUUse{Percent: 37, Over: 5 * time.Minute, Above: true}},
			[]string{"37% CPU over the last 5 min"}, false},
		{"CPU below the threshold holds nothing", Result{State: Answered, LastActivity: old, CPU: &CPUUse{Percent: 2, Over: 5 * time.Minute}}, nil, true},
		{"CPU since the start", Result{State: Answered, LastActivity: old, CPU: &CPUUse{Percent: 80, Over: 40 * time.Second, SinceStart: true, Above: true}},
			[]string{"80% CPU since the container started 40 s ago"}, false},
		{"an unreachable server working its CPU", Result{State: Unreachable, LastActivity: old, CPU: &CPUUse{Percent: 99, Over: 2 * time.Hour, Above: true}},
			[]string{"99% CPU over the last 2 h"}, false},
		{"front door: a websocket open holds an old server", Result{State: Answered, LastActivity: old, FrontDoor: &Traffic{Last: t0.Add(-12 * time.Second), Websockets: 1}},
			[]string{"front door: last request 12 s ago, 1 websocket open"}, false},
		{"front door: websockets open long after the last request", Result{State: Answered, LastActivity: old, FrontDoor: &Traffic{Last: old, Websockets: 3}},
			[]string{"front door: last request 3 h ago, 3 websockets open"}, false},
		{"front door: a request younger than idle keeps it, holds nothing", Result{State: Answered, Kernels: 1, LastActivity: old, FrontDoor: &Traffic{Last: t0.Add(-59 * time.Minute)}},
			nil, false},
		{"front door: a request exactly idle ago, none open: idle", Result{State: Answered, Kernels: 1, LastActivity: old, FrontDoor: &Traffic{Last: t0.Add(-time.Hour)}},
			nil, true},
		{"front door: old requests, none open: idle", Result{State: Answered, LastActivity: old, FrontDoor: &Traffic{Last: old.Add(time.Hour)}}, nil, true},
		{"front door: old requests do not age recent kernel activity", Result{State: Answered, Kernels: 1, LastActivity: t0.Add(-time.Minute), FrontDoor: &Traffic{Last: old}},
			nil, false},
		{"front door: a recent request to an unreachable server", Result{State: Unreachable, LastActivity: old, FrontDoor: &Traffic{Last: t0.Add(-time.Minute)}},
			nil, false},
		{"front door: traffic never makes a starting server idle", Result{State: Starting, FrontDoor: &Traffic{Last: old}}, nil, false},
		{"every signal, in order", Result{State: Answered, Busy: true, Connections: 2, SeenBusy: t0.Add(-time.Hour), LastActivity: old,
			CPU: &CPUUse{Percent: 100, Over: 90 * time.Minute, Above: true}, FrontDoor: &Traffic{Last: t0.Add(-time.Second), Websockets: 2}},
			[]string{"a kernel is busy", "2 open connections", "kernel seen busy at 09:30 UTC, silent since", "100% CPU over the last 1 h 30 min",
				"front door: last request 1 s ago, 2 websockets open"}, false},
	} {
		if got := tc.r.Holds(t0); !reflect.DeepEqual(got, tc.holds) {
			t.Errorf("%s: holds %q, want %q", tc.desc, got, tc.holds)
		}
		if got := tc.r.Idle(t0, time.Hour); got != tc.idle {
			t.Errorf("%s: idle %v, want %v", tc.desc, got, tc.idle)
		}
	}
}

func TestCPUUse(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	started := t0.Add(-time.Hour)
	s := func(used, ago time.Duration) *CPUSample { return &CPUSample{Used: used, At: t0.Add(-ago)} }
	for _, tc := range []struct {
		desc    string
		prev    *CPUSample
		cur     CPUSample
		started time.Time
		want    *CPUUse
	}{
		{"since the last look", s(10*time.Second, 5*time.Minute), *s(10*time.Second+111*time.Second, 0), started,
			&CPUUse{Percent: 37, Over: 5 * time.Minute, Above: true}},
		{"idle since the last look", s(10*time.Second, 5*time.Minute), *s(10*time.Second+300*time.Millisecond, 0), started,
			&CPUUse{Percent: 0.1, Over: 5 * time.Minute}},
		{"two cores busy", s(0, time.Minute), *s(120*time.Second, 0), started,
			&CPUUse{Percent: 200, Over: time.Minute, Above: true}},
		{"no earlier look: since the start", nil, *s(36*time.Second, 0), started,
			&CPUUse{Percent: 1, Over: time.Hour, SinceStart: true}},
		{"earlier look before a restart: since the start", s(time.Hour, 2*time.Hour), *s(720*time.Second, 0), started,
			&CPUUse{Percent: 20, Over: time.Hour, SinceStart: true, Above: true}},
		{"less CPU time than before (restarted): since the start", s(time.Hour, 10*time.Minute), *s(360*time.Second, 0), started,
			&CPUUse{Percent: 10, Over: time.Hour, SinceStart: true, Above: true}},
		{"nothing to measure against", nil, *s(time.Second, 0), time.Time{}, nil},
	} {
		got := cpuUse(tc.prev, tc.cur, tc.started, DefaultCPUThreshold)
		if got != nil && tc.want != nil {
			got.Percent = float64(int(got.Percent*10+0.5)) / 10 // one decimal
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
	}
}

func TestMemoryObserve(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	la := t0.Add(-10 * time.Minute)
	kernel := func(id, state string, at time.Time) KernelState {
		return KernelState{ID: id, ExecutionState: state, LastActivity: at}
	}
	answered := func(ks ...KernelState) Result {
		r := Result{State: Answered, Kernels: len(ks), KernelStates: ks}
		for _, k := range ks {
			r.Busy = r.Busy || k.ExecutionState == "busy"
		}
		return r
	}
	// Each case: a first look, then a second one 5 minutes later; want is
	// the second look's SeenBusy.
	for _, tc := range []struct {
		desc          string
		first, second Result
		want          time.Time
		remembered    int // kernels remembered after the second look
	}{
		{"busy, then listed idle with no message since: held", answered(kernel("k", "busy", la)), answered(kernel("k", "idle", la)), t0, 1},
		{"busy, then listed starting with no message since: held", answered(kernel("k", "busy", la)), answered(kernel("k", "starting", la)), t0, 1},
		{"busy, then a message (the cell finished): forgotten", answered(kernel("k", "busy", la)), answered(kernel("k", "idle", la.Add(time.Second))), time.Time{}, 0},
		{"busy, then dead: forgotten", answered(kernel("k", "busy", la)), answered(kernel("k", "dead", la)), time.Time{}, 0},
		{"busy, then gone: forgotten", answered(kernel("k", "busy", la)), answered(), time.Time{}, 0},
		{"busy twice: the listed state holds, remembered", answered(kernel("k", "busy", la)), answered(kernel("k", "busy", la)), time.Time{}, 1},
		{"never busy: nothing remembered", answered(kernel("k", "idle", la)), answered(kernel("k", "idle", la)), time.Time{}, 0},
		{"busy, then no answer: remembered, not held", answered(kernel("k", "busy", la)), Result{State: Unknown}, time.Time{}, 1},
		{"another kernel's silence does not count", answered(kernel("k1", "busy", la), kernel("k2", "idle", la)),
			answered(kernel("k1", "idle", la.Add(time.Minute)), kernel("k2", "idle", la)), time.Time{}, 0},
	} {
		m := &Memory{}
		first := map[string]Result{"c": tc.first}
		m.Observe(first, t0, DefaultCPUThreshold)
		if !first["c"].SeenBusy.IsZero() {
			t.Errorf("%s: first look held by memory", tc.desc)
		}
		// Through the file, as a restarted daemon reads it.
		p := filepath.Join(t.TempDir(), "state", "activity.json")
		if err := m.Save(p); err != nil {
			t.Fatal(err)
		}
		m2, err := LoadMemory(p)
		if err != nil {
			t.Fatal(err)
		}
		second := map[string]Result{"c": tc.second}
		m2.Observe(second, t0.Add(5*time.Minute), DefaultCPUThreshold)
		if got := second["c"].SeenBusy; !got.Equal(tc.want) {
			t.Errorf("%s: SeenBusy %v, want %v", tc.desc, got, tc.want)
		}
		if n := len(m2.Busy["c"]); n != tc.remembered {
			t.Errorf("%s: %d kernels remembered, want %d", tc.desc, n, tc.remembered)
		}
	}
}

func TestMemoryForgetsContainersGone(t *testing.T) {
	t0 := time.Now()
	m := &Memory{}
	m.Observe(map[string]Result{
		"a": {State: Answered, Busy: true, KernelStates: []KernelState{{ID: "k", ExecutionState: "busy", LastActivity: t0}}, CPUSample: &CPUSample{Used: time.Second, At: t0}},
		"b": {State: Answered, Busy: true, KernelStates: []KernelState{{ID: "k", ExecutionState: "busy", LastActivity: t0}}, CPUSample: &CPUSample{Used: time.Second, At: t0}},
	}, t0, DefaultCPUThreshold)
	m.Observe(map[string]Result{"b": {State: Unknown}}, t0, DefaultCPUThreshold)
	if _, ok := m.Busy["a"]; ok {
		t.Error("kernels of a container no longer running still remembered")
	}
	if _, ok := m.CPU["a"]; ok {
		t.Error("CPU time of a container no longer running still remembered")
	}
	if len(m.Busy["b"]) != 1 || m.CPU["b"].Used != time.Second {
		t.Errorf("a container that did not answer lost its memory: %+v", m)
	}
}

func TestMemoryCPUAcrossLooks(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	started := t0.Add(-time.Hour)
	m := &Memory{}
	look := func(used time.Duration, at time.Time) Result {
		rs := map[string]Result{"c": {State: Answered, StartedAt: started, LastActivity: started, CPUSample: &CPUSample{Used: used, At: at}}}
		m.Observe(rs, at, DefaultCPUThreshold)
		return rs["c"]
	}
	r1 := look(time.Minute, t0) // 1 min over 1 h: under 10%, since the start
	if r1.CPU == nil || !r1.CPU.SinceStart || r1.CPU.Above || len(r1.Holds(t0)) != 0 {
		t.Fatalf("first look: %+v", r1.CPU)
	}
	r2 := look(time.Minute+4*time.Minute, t0.Add(5*time.Minute)) // 80% over 5 min
	if r2.CPU == nil || r2.CPU.SinceStart || !r2.CPU.Above || r2.Idle(t0.Add(5*time.Minute), time.Minute) {
		t.Fatalf("second look: %+v, holds %q", r2.CPU, r2.Holds(t0))
	}
	if got := r2.Holds(t0); len(got) != 1 || got[0] != "80% CPU over the last 5 min" {
		t.Errorf("holds %q", got)
	}
	r3 := look(5*time.Minute+time.Second, t0.Add(10*time.Minute)) // idle again
	if r3.CPU.Above || !r3.Idle(t0.Add(10*time.Minute), time.Minute) {
		t.Errorf("third look: %+v", r3.CPU)
	}
}

// TestMemoryCPUShortWindows: looks sooner than MinCPUWindow after the last
// one (passes back to back) measure from an older sample, so that the CPU
// a probe costs over a fraction of a second does not read as use.
func TestMemoryCPUShortWindows(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	started := t0.Add(-time.Hour)
	type look struct {
		used time.Duration
		at   time.Duration // after t0
	}
	for _, tc := range []struct {
		desc  string
		looks []look
		want  CPUUse // the last look's
	}{
		{"a look 300 ms after the last: over the window before it",
			[]look{{time.Minute, 0}, {time.Minute + 300*time.Millisecond, time.Minute}, {time.Minute + 400*time.Millisecond, time.Minute + 300*time.Millisecond}},
			CPUUse{Percent: 0.7, Over: time.Minute + 300*time.Millisecond}},
		{"busy over the window, then a look 1 s on: still held",
			[]look{{time.Minute, 0}, {time.Minute + 50*time.Second, time.Minute}, {time.Minute + 51*time.Second, time.Minute + time.Second}},
			CPUUse{Percent: 83.6, Over: time.Minute + time.Second, Above: true}},
		{"two looks 1 s apart, nothing before: since the start",
			[]look{{time.Minute, 0}, {time.Minute + 500*time.Millisecond, time.Second}},
			CPUUse{Percent: 1.7, Over: time.Hour + time.Second, SinceStart: true}},
		{"short looks do not move the baseline: the window grows to the minimum",
			[]look{{0, 0}, {0, MinCPUWindow}, {time.Second, MinCPUWindow + 10*time.Second}, {2 * time.Second, MinCPUWindow + 20*time.Second}},
			CPUUse{Percent: 2 / 50.0 * 100, Over: 50 * time.Second}},
		{"a window of exactly the minimum replaces the baseline",
			[]look{{0, 0}, {0, MinCPUWindow}, {3 * time.Second, 2 * MinCPUWindow}},
			CPUUse{Percent: 10, Over: MinCPUWindow, Above: true}},
	} {
		m := &Memory{}
		var r Result
		for _, l := range tc.looks {
			rs := map[string]Result{"c": {State: Answered, StartedAt: started, CPUSample: &CPUSample{Used: l.used, At: t0.Add(l.at)}}}
			m.Observe(rs, t0.Add(l.at), DefaultCPUThreshold)
			r = rs["c"]
		}
		got := *r.CPU
		got.Percent = float64(int(got.Percent*10+0.5)) / 10
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.desc, got, tc.want)
		}
	}
}

func TestMemoryFile(t *testing.T) {
	dir := t.TempDir()
	p := rootdir.ActivityMemory(dir)
	m, err := LoadMemory(p)
	if err != nil || len(m.Busy)+len(m.CPU) != 0 {
		t.Fatalf("missing file: %+v, %v", m, err)
	}
	m.CPU = map[string]CPUSample{"c": {Used: time.Second, At: time.Now()}}
	if err := m.Save(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("memory file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err = LoadMemory(p)
	if err == nil || !strings.Contains(err.Error(), p) || m == nil || len(m.CPU) != 0 {
		t.Errorf("corrupt file: %+v, %v (want an error naming the file and an empty memory)", m, err)
	}
}

func TestCgroup(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	write := func(t *testing.T, root, rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := "usage_usec 37000123\nuser_usec 30000000\nsystem_usec 7000123\nnr_periods 0\n"
	for _, tc := range []struct {
		desc, rel, content string
		want               time.Duration
		err                string
	}{
		{"v2, systemd driver", "system.slice/docker-" + id + ".scope/cpu.stat", stat, 37000123 * time.Microsecond, ""},
		{"v2, cgroupfs driver", "docker/" + id + "/cpu.stat", stat, 37000123 * time.Microsecond, ""},
		{"v2, podman, systemd", "machine.slice/libpod-" + id + ".scope/cpu.stat", stat, 37000123 * time.Microsecond, ""},
		{"v2, podman, cgroupfs", "libpod_parent/libpod-" + id + "/cpu.stat", stat, 37000123 * time.Microsecond, ""},
		{"v1, cgroupfs driver", "cpuacct/docker/" + id + "/cpuacct.usage", "37000123000\n", 37000123 * time.Microsecond, ""},
		{"v1, systemd driver, joint hierarchy", "cpu,cpuacct/system.slice/docker-" + id + ".scope/cpuacct.usage", "5\n", 5, ""},
		{"elsewhere: no cgroup", "docker/other/cpu.stat", stat, 0, ErrNoCgroup.Error()},
		{"v2 without usage_usec", "docker/" + id + "/cpu.stat", "user_usec 1\n", 0, "no usage_usec"},
		{"v2 garbled", "docker/" + id + "/cpu.stat", "usage_usec lots\n", 0, `usage_usec "lots"`},
	} {
		root := t.TempDir()
		write(t, root, tc.rel, tc.content)
		got, err := Cgroup{Root: root}.CPUTime(t.Context(), id)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.desc, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.desc, got, err, tc.want)
		}
	}
	if _, err := (Cgroup{Root: t.TempDir()}).CPUTime(t.Context(), "../../etc"); err == nil || errors.Is(err, ErrNoCgroup) {
		t.Errorf("a path for an ID: %v", err)
	}
}

type cpuFunc func(ctx context.Context, id string) (time.Duration, error)

func (f cpuFunc) CPUTime(ctx context.Context, id string) (time.Duration, error) { return f(ctx, id) }

var _ CPUReader = cpuFunc(nil)

func TestLocalFirst(t *testing.T) {
	local := cpuFunc(func(_ context.Context, id string) (time.Duration, error) {
		switch id {
		case "here":
			return time.Second, nil
		case "broken":
			return 0, errors.New("permission denied")
		}
		return 0, ErrNoCgroup
	})
	engine := cpuFunc(func(context.Context, string) (time.Duration, error) { return 2 * time.Second, nil })
	for _, tc := range []struct {
		desc      string
		l         LocalFirst
		id        string
		want      time.Duration
		viaEngine bool
		wantErr   bool
	}{
		{"on this host: the cgroup", LocalFirst{Local: local, Engine: engine}, "here", time.Second, false, false},
		{"not on this host: the engine", LocalFirst{Local: local, Engine: engine}, "there", 2 * time.Second, true, false},
		{"a cgroup that fails is an error, not an engine call", LocalFirst{Local: local, Engine: engine}, "broken", 0, false, true},
		{"not on this host, no engine", LocalFirst{Local: local}, "there", 0, false, true},
		{"engine only", LocalFirst{Engine: engine}, "here", 2 * time.Second, true, false},
	} {
		got, via, err := tc.l.Read(t.Context(), tc.id)
		if got != tc.want || via != tc.viaEngine || (err != nil) != tc.wantErr {
			t.Errorf("%s: %v, via engine %v, %v", tc.desc, got, via, err)
		}
	}
}

// A round reads every container's CPU time, also when its server does not
// answer, says which reads cost an engine call, and completes the results
// from the memory file; the HTTP requests stay those of a probe.
func TestRoundReadsCPUAndMemory(t *testing.T) {
	srv, reqs := apiServer(t, map[string]answer{
		"api/kernels":   {200, `[{"id":"k","last_activity":"2025-03-01T09:00:00Z","execution_state":"idle","connections":0}]`},
		"api/terminals": {200, `[]`},
	})
	down := closedURL(t)
	used := map[string]time.Duration{"here": 3 * time.Second, "down": 50 * time.Minute}
	p := testProber()
	p.Now = time.Now // CPU samples are taken on the real clock
	p.CPU = &LocalFirst{
		Local: cpuFunc(func(_ context.Context, id string) (time.Duration, error) {
			if id == "remote" {
				return 0, ErrNoCgroup
			}
			return used[id], nil
		}),
		Engine: cpuFunc(func(context.Context, string) (time.Duration, error) { return time.Second, nil }),
	}
	started := time.Now().Add(-time.Hour)
	targets := []Target{
		{ID: "here", URL: srv.URL + "/", StartedAt: started},
		{ID: "remote", URL: srv.URL + "/", StartedAt: started},
		{ID: "down", URL: down, StartedAt: started},
	}
	memFile := filepath.Join(t.TempDir(), "state", "activity.json")
	res, mem, err := p.Round(t.Context(), targets, memFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(reqs()); n != 4 {
		t.Errorf("%d HTTP requests for two answering servers, want 4 (kernels and terminals each)", n)
	}
	for id, want := range map[string]struct {
		state     State
		used      time.Duration
		viaEngine bool
		held      bool
	}{
		"here":   {Answered, 3 * time.Second, false, false},
		"remote": {Answered, time.Second, true, false},
		"down":   {Unreachable, 50 * time.Minute, false, true}, // 83% of a core since its start
	} {
		r := res[id]
		if r.State != want.state || r.CPUSample == nil || r.CPUSample.Used != want.used || r.CPUEngineCall != want.viaEngine || r.CPU == nil || !r.CPU.SinceStart {
			t.Errorf("%s: %+v (sample %+v, use %+v)", id, r, r.CPUSample, r.CPU)
			continue
		}
		if held := len(r.Holds(time.Now())) > 0; held != want.held {
			t.Errorf("%s: holds %q", id, r.Holds(time.Now()))
		}
	}
	// The first round, as if a minute ago: a round sooner than
	// MinCPUWindow measures from further back.
	first := mem.CPU["here"]
	first.At = first.At.Add(-time.Minute)
	mem.CPU["here"] = first
	if err := mem.Save(memFile); err != nil {
		t.Fatal(err)
	}
	used["here"] = 3*time.Second + 40*time.Second // a computation since
	res, _, err = p.Round(t.Context(), targets[:1], memFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["here"]; r.CPU == nil || r.CPU.SinceStart || !r.CPU.Above {
		t.Errorf("second round: %+v, want CPU use since the first round, above the threshold", r.CPU)
	}
}
