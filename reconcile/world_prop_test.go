package reconcile_test

// A randomized property test of the container pass: a simulated site (an
// engine of containers, each with the truth about its Jupyter server, a
// config that changes, images that get rebuilt, students who show up) is
// driven through many passes — the real Manager (over a fake Engine) as the
// executor, the real Locks, the real Plan and Applier — and every engine call
// a pass makes is checked against an oracle written independently of Plan.
//
// Reproduce a failure with the seed it prints:
//
//	NBH_PROP_SEED=<seed> go test -race -run TestPropPass ./reconcile
//
// NBH_PROP_ITER sets the number of seeded worlds (default 120).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
)

func TestPropPass(t *testing.T) {
	t.Parallel()
	base, iters := uint64(time.Now().UnixNano()), 120
	if s := os.Getenv("NBH_PROP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NBH_PROP_SEED: %v", err)
		}
		base, iters = v, 1
	}
	if s := os.Getenv("NBH_PROP_ITER"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("NBH_PROP_ITER: %v", err)
		}
		iters = n
	}
	if testing.Short() {
		iters = min(iters, 20)
	}
	var stats worldStats
	for i := range iters {
		seed := base + uint64(i)
		w := newWorld(t, seed)
		w.run(t.Context())
		if len(w.violations) > 0 {
			tail := w.trace[max(0, len(w.trace)-40):]
			t.Fatalf("seed %d (rerun: NBH_PROP_SEED=%d go test -race -run TestPropPass ./reconcile): %d violations:\n  %s\nlast events:\n  %s",
				seed, seed, len(w.violations), strings.Join(w.violations[:min(10, len(w.violations))], "\n  "), strings.Join(tail, "\n  "))
		}
		stats.add(w.stats)
	}
	t.Logf("seeds %d..%d: %+v", base, base+uint64(iters)-1, stats)
	// The generator must reach the cases the invariants are about.
	for what, n := range map[string]int{"stops": stats.Stops, "removes": stats.Removes, "holds": stats.Holds,
		"skipped after a hand-out": stats.SkippedHandedOut, "skipped, replaced": stats.SkippedReplaced,
		"retired lingering":           stats.Lingering,
		"kept for an open connection": stats.HeldConn, "kept for a kernel seen busy": stats.HeldSeenBusy,
		"kept for CPU use": stats.HeldCPU} {
		if n == 0 && iters >= 50 {
			t.Errorf("no %s in %d worlds: the generator misses a case", what, iters)
		}
	}
}

// worldStats count what the worlds exercised.
type worldStats struct {
	Passes, Containers, Stops, Removes, Holds, Spawns          int
	SkippedHandedOut, SkippedReplaced, SkippedOther, Lingering int
	HeldConn, HeldSeenBusy, HeldCPU                            int
}

func (s *worldStats) add(o worldStats) {
	s.Passes += o.Passes
	s.Containers += o.Containers
	s.Stops += o.Stops
	s.Removes += o.Removes
	s.Holds += o.Holds
	s.Spawns += o.Spawns
	s.SkippedHandedOut += o.SkippedHandedOut
	s.SkippedReplaced += o.SkippedReplaced
	s.SkippedOther += o.SkippedOther
	s.Lingering += o.Lingering
	s.HeldConn += o.HeldConn
	s.HeldSeenBusy += o.HeldSeenBusy
	s.HeldCPU += o.HeldCPU
}

// The truth about a running container's server.
type srvKind int

const (
	srvNoKernel srvKind = iota // answers, no kernel
	srvKernel                  // answers, one kernel (busy or last active at last)
	srvDown                    // does not answer
	srvError                   // answers with an error
)

const grace = 2 * time.Minute // the prober's grace for a server that does not answer

type simCtr struct {
	id, name, course, student, image string
	running                          bool
	created, started                 time.Time
	port                             int
	adopted                          bool // nbhosting's: no labels, no port
	srv                              srvKind
	busy                             bool
	last                             time.Time

	// What one look at the server cannot tell. listedIdle: the server
	// lists the busy kernel idle (a missed or overwritten status), with
	// no message since. busySeen: a pass's probe listed the running cell
	// busy. conns: open websockets. cpuRate: the share of a core its
	// processes use, steady since cpuSince; cpuUsed: its CPU time since
	// it started. prevLook, lastLook: the two last probes.
	listedIdle, busySeen bool
	conns                int
	cpuRate              float64
	cpuSince             time.Time
	cpuUsed              time.Duration
	prevLook, lastLook   time.Time
}

// cpuRates are the shares of a core containers use: idle, a background
// trickle, a computation, a full core.
var cpuRates = []float64{0, 0, 0.02, 0.3, 1}

// resetWork is a (re)started container: a fresh server, no computation,
// its cgroup's CPU time back to zero.
func (c *simCtr) resetWork(at time.Time) {
	c.srv, c.busy, c.listedIdle, c.busySeen, c.conns = srvNoKernel, false, false, false, 0
	c.cpuRate, c.cpuSince, c.cpuUsed, c.prevLook, c.lastLook = 0, at, 0, time.Time{}, time.Time{}
}

// advance moves a world's clock, running its containers' CPU meanwhile.
func (w *world) advance(d time.Duration) {
	for _, c := range w.ctrs {
		if c.running {
			c.cpuUsed += time.Duration(float64(d) * c.cpuRate)
		}
	}
	w.now = w.now.Add(d)
}

type simCourse struct {
	co      manifest.Course
	removed bool
}

// Freeze windows the generator uses, each with an oracle written without
// cron: hours are UTC, as is the simulated clock.
var freezes = []struct {
	f  manifest.Freeze
	in func(time.Time) bool
}{
	{manifest.Freeze{Cron: "0 8 * * *", For: manifest.Duration(4 * time.Hour)}, func(t time.Time) bool { return t.Hour() >= 8 && t.Hour() < 12 }},
	{manifest.Freeze{Cron: "0 */6 * * *", For: manifest.Duration(2 * time.Hour)}, func(t time.Time) bool { return t.Hour()%6 < 2 }},
	{manifest.Freeze{Cron: "0 8 * * 1", For: manifest.Duration(4 * time.Hour)}, func(t time.Time) bool {
		return t.Weekday() == time.Monday && t.Hour() >= 8 && t.Hour() < 12
	}},
}

type world struct {
	seed         uint64
	rng          *rand.Rand
	locks        *containers.Locks
	foreignLocks *containers.Locks // another process's
	mgr          *containers.Manager

	mu       sync.Mutex // guards the engine state below (spawns race Apply)
	now      time.Time
	ctrs     map[string]*simCtr // by ID
	byName   map[string]string  // name -> ID
	nextID   int
	handout  map[string]time.Time // container ID -> last hand-out
	courses  map[string]*simCourse
	images   map[string]string // image -> current ID ("" = not built)
	defaults manifest.Defaults
	students []string

	// The pass in progress.
	planAt  time.Time
	planned map[string]reconcile.Action // retirements, by container ID
	snap    map[string]simCtr           // containers as the plan saw them
	cfgSnap map[string]simCourse        // courses as the plan saw them
	retired map[string]map[string]bool  // course -> container IDs retired

	memFile string // the activity memory, as ROOT/state/activity.json

	violations []string
	trace      []string
	stats      worldStats
}

func newWorld(t *testing.T, seed uint64) *world {
	w := &world{
		memFile: filepath.Join(t.TempDir(), "state", "activity.json"),
		seed:    seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		locks: containers.NewLocks(), foreignLocks: containers.NewLocks(),
		// The clock starts far ahead of the real one: Locks forgets a
		// hand-out older than an hour of real time, and simulated times
		// must never look that old to it.
		now:     time.Date(2099, 1, 5, 6, 0, 0, 0, time.UTC).Add(time.Duration(seed%1000) * time.Hour),
		ctrs:    map[string]*simCtr{},
		byName:  map[string]string{},
		handout: map[string]time.Time{},
		courses: map[string]*simCourse{},
		images:  map[string]string{},
	}
	w.mgr = containers.New(&simEngine{w: w}, w.locks, nil)
	w.mgr.Site = worldSite
	w.mgr.StopTimeout = 0
	r := w.rng
	w.defaults = manifest.Defaults{Idle: manifest.Duration(pick(r, 30*time.Minute, 2*time.Hour)),
		Lingering: manifest.Duration(pick(r, 12*time.Hour, 48*time.Hour)), RetireLimit: pick(r, 0, 2, 4)}
	if r.IntN(3) == 0 {
		w.defaults.Freeze = []manifest.Freeze{freezes[r.IntN(len(freezes))].f}
	}
	for i := range 2 + r.IntN(5) {
		name := fmt.Sprintf("c%d", i)
		co := manifest.Course{Name: name}
		if r.IntN(4) == 0 {
			co.Image = "shared"
		}
		w.courses[name] = &simCourse{co: co}
		w.randomizeCourse(name)
		w.images[co.ImageOf()] = w.newImage()
	}
	for i := range 3 + r.IntN(10) {
		w.students = append(w.students, fmt.Sprintf("s%d", i))
	}
	// Some containers made by nbhosting before nbh-sync: no labels, no
	// published port, so their activity cannot be read.
	for range r.IntN(4) {
		co, st := w.randomCourse(), w.randomStudent()
		if _, taken := w.byName[naming.Container(co, st)]; taken {
			continue
		}
		c := w.create(co, st, "sha256:nbhosting-old", w.now.Add(-time.Duration(r.IntN(60))*time.Hour))
		if c != nil {
			c.adopted, c.port, c.running = true, 0, r.IntN(2) == 0
		}
	}
	return w
}

func pick[T any](r *rand.Rand, vs ...T) T { return vs[r.IntN(len(vs))] }

func (w *world) logf(format string, args ...any) {
	w.trace = append(w.trace, w.now.Format("Mon 15:04")+" "+fmt.Sprintf(format, args...))
}

func (w *world) violate(format string, args ...any) {
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

func (w *world) newImage() string {
	w.nextID++
	return fmt.Sprintf("sha256:img%04d", w.nextID)
}

func (w *world) randomCourse() string {
	names := slices.Sorted(maps.Keys(w.courses))
	return names[w.rng.IntN(len(names))]
}

func (w *world) randomStudent() string { return w.students[w.rng.IntN(len(w.students))] }

// randomizeCourse draws a course's settings, merged with defaults the way
// Parse merges them (every field set).
func (w *world) randomizeCourse(name string) {
	r, sc := w.rng, w.courses[name]
	co := &sc.co
	co.Idle = manifest.Duration(pick(r, 10*time.Minute, 30*time.Minute, time.Hour, 2*time.Hour))
	co.Lingering = manifest.Duration(pick(r, 6*time.Hour, 12*time.Hour, 48*time.Hour))
	co.RetireLimit = pick(r, 0, 1, 2, 3, 5)
	co.Freeze = nil
	if r.IntN(3) == 0 {
		co.Freeze = []manifest.Freeze{freezes[r.IntN(len(freezes))].f}
	}
	co.Archived = r.IntN(8) == 0
	sc.removed = r.IntN(8) == 0
}

// create makes a running container (the engine part of a spawn). w.mu held
// or not needed.
func (w *world) create(course, student, image string, at time.Time) *simCtr {
	name := naming.Container(course, student)
	if _, ok := w.byName[name]; ok {
		w.violate("engine: name %s already in use", name)
		return nil
	}
	w.nextID++
	c := &simCtr{id: fmt.Sprintf("ctr%05d", w.nextID), name: name, course: course, student: student, image: image,
		running: true, created: at, started: at, port: 30000 + w.nextID}
	c.resetWork(at)
	w.ctrs[c.id], w.byName[name] = c, c.id
	w.stats.Containers++
	return c
}

// spawn is containers.Spawn's decision table over the simulated engine,
// under the real Locks, handing the container out at at. A foreign spawn is
// another process's (a second nbh-sync run directly, not through the
// daemon's API): it has its own Locks, so the pass only sees what it did to
// the engine.
func (w *world) spawn(ctx context.Context, course, student string, at time.Time, works, busy, foreign bool) {
	w.mu.Lock()
	sc, ok := w.courses[course]
	var img string
	if ok {
		img = w.images[sc.co.ImageOf()]
	}
	w.mu.Unlock()
	if !ok || sc.removed || sc.co.Archived || img == "" {
		return // refused: unknown or archived course, image not built
	}
	locks := w.locks
	if foreign {
		locks = w.foreignLocks
	}
	unlock, err := locks.Lock(ctx, course, student)
	if err != nil {
		return
	}
	defer unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.ctrs[w.byName[naming.Container(course, student)]]
	how := "existing"
	switch {
	case c == nil:
		c, how = w.create(course, student, img, at), "created"
	case c.running:
	case c.image == img && c.port != 0:
		c.running, c.started, how = true, at, "started"
		c.resetWork(at)
	default:
		delete(w.ctrs, c.id)
		delete(w.byName, c.name)
		c, how = w.create(course, student, img, at), "recreated"
	}
	if c == nil {
		return
	}
	// Across processes nothing tells the pass that a running container was
	// just handed out as is: only what changed on the engine (started,
	// recreated) can stop it. That case is left out of the invariant.
	if !foreign || how != "existing" {
		w.handout[c.id] = at
	}
	locks.MarkHandedOut(course, student, at)
	w.stats.Spawns++
	if works {
		c.srv, c.busy, c.last, c.listedIdle, c.busySeen = srvKernel, busy, at, false, false
	}
	w.trace = append(w.trace, fmt.Sprintf("  spawn %s: %s %s (foreign %v)", c.name, how, c.id, foreign))
}

func (w *world) run(ctx context.Context) {
	steps := 30 + w.rng.IntN(40)
	for range steps {
		w.step(ctx)
		if len(w.violations) > 0 {
			return
		}
	}
	w.settle(ctx)
}

// step advances the clock and does one random thing.
func (w *world) step(ctx context.Context) {
	r := w.rng
	w.advance(time.Duration(1+r.IntN(180)) * time.Minute)
	switch n := r.IntN(20); {
	case n < 5: // students work, stop working, servers fail
		for _, id := range slices.Sorted(maps.Keys(w.ctrs)) {
			c := w.ctrs[id]
			if !c.running || r.IntN(3) != 0 {
				continue
			}
			switch r.IntN(10) {
			case 0, 1:
				// A cell starts (or some activity); the server may miss
				// its busy status from the start.
				c.srv, c.busy, c.last = srvKernel, r.IntN(3) == 0, w.now.Add(-time.Duration(r.IntN(30))*time.Minute)
				c.listedIdle, c.busySeen = c.busy && r.IntN(4) == 0, false
			case 2:
				// The cell finishes: its last status message moves the
				// kernel's last_activity.
				if c.busy {
					c.busy, c.listedIdle, c.busySeen, c.last = false, false, false, w.now
				}
			case 6:
				// The server overwrites a busy kernel's state with idle.
				c.listedIdle = c.busy
			case 7:
				if c.srv == srvKernel {
					c.conns = pick(r, 0, 0, 1, 2)
				}
			case 8, 9:
				c.cpuRate, c.cpuSince = pick(r, cpuRates...), w.now
			case 3:
				c.srv = srvDown
			case 4:
				c.srv = srvError
			case 5:
				c.srv, c.busy, c.listedIdle, c.busySeen, c.conns = srvNoKernel, false, false, false, 0
			}
			if c.srv != srvKernel {
				c.conns = 0 // connections are to kernels
			}
			w.logf("activity %s: srv %d busy %v (listed idle %v) last %s conns %d cpu %.2f since %s", c.name, c.srv, c.busy, c.listedIdle,
				c.last.Format("Mon 15:04"), c.conns, c.cpuRate, c.cpuSince.Format("Mon 15:04"))
		}
	case n < 7: // an image is rebuilt
		img := w.courses[w.randomCourse()].co.ImageOf()
		w.images[img] = w.newImage()
		w.logf("image %s -> %s", img, w.images[img])
	case n < 9: // a config revision
		name := w.randomCourse()
		w.randomizeCourse(name)
		sc := w.courses[name]
		w.logf("config %s: idle %s lingering %s limit %d freeze %v archived %v removed %v", name,
			sc.co.Idle, sc.co.Lingering, sc.co.RetireLimit, sc.co.Freeze, sc.co.Archived, sc.removed)
	case n < 13: // students show up
		for range 1 + r.IntN(4) {
			w.spawn(ctx, w.randomCourse(), w.randomStudent(), w.now, r.IntN(3) != 0, r.IntN(2) == 0, false)
		}
	default:
		w.pass(ctx, r.IntN(3) == 0, false)
	}
	w.checkUnique()
}

// settle stops the world — no more students, config changes or rebuilds —
// and runs passes 3 hours apart: every idle container must end up stopped,
// on its course's current image, in a course that exists (liveness), within
// a bound set by the retire limits and the freeze windows.
func (w *world) settle(ctx context.Context) {
	w.logf("settle")
	most := 0
	perCourse := map[string]int{}
	for _, c := range w.ctrs {
		perCourse[c.course]++
		most = max(most, perCourse[c.course])
		if c.srv != srvKernel {
			c.srv = srvNoKernel
		}
		if c.busy {
			c.last = w.now // the cell ends, with a message
		}
		c.busy, c.listedIdle, c.busySeen, c.conns = false, false, false, 0
		c.cpuRate, c.cpuSince = 0, w.now
	}
	limit := w.defaults.RetireLimit
	for _, sc := range w.courses {
		if sc.co.RetireLimit > 0 {
			limit = min(limit, sc.co.RetireLimit)
		}
	}
	if limit == 0 {
		limit = 1
	}
	// Each container retires at most twice (stopped in a freeze window,
	// removed after); lingering (48h at most) ends every unprobed one.
	bound := 2*((most+limit-1)/limit) + 30
	for range bound {
		w.advance(3 * time.Hour)
		w.pass(ctx, false, true)
		if len(w.violations) > 0 {
			return
		}
	}
	for _, id := range slices.Sorted(maps.Keys(w.ctrs)) {
		c := w.ctrs[id]
		sc, known := w.courses[c.course]
		switch {
		case !known || sc.removed || sc.co.Archived:
			w.violate("liveness: %s of a removed or archived course still there after %d idle passes", c.name, bound)
		case w.images[sc.co.ImageOf()] != "" && c.image != w.images[sc.co.ImageOf()]:
			w.violate("liveness: stale %s (image %s, current %s) still there after %d idle passes", c.name, c.image, w.images[sc.co.ImageOf()], bound)
		case c.running:
			w.violate("liveness: idle %s still running after %d idle passes", c.name, bound)
		}
	}
}

func (w *world) config() (*manifest.Config, map[string]string) {
	cfg := &manifest.Config{Version: 1, Defaults: w.defaults, Courses: map[string]manifest.Course{}}
	for name, sc := range w.courses {
		if !sc.removed {
			cfg.Courses[name] = sc.co
		}
	}
	return cfg, builtImages(w.images)
}

// builtImages leaves out the images not built yet (empty IDs).
func builtImages(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// probe is what activity.Prober would report for each running container
// with a published port, completed by the activity memory kept in a file
// (read and written by every pass, as a restarted daemon would).
func (w *world) probe() map[string]activity.Result {
	out := map[string]activity.Result{}
	for id, c := range w.ctrs {
		if !c.running || c.port == 0 {
			continue
		}
		c.prevLook, c.lastLook = c.lastLook, w.now
		switch c.srv {
		case srvNoKernel:
			out[id] = activity.Result{State: activity.Answered, LastActivity: c.started}
		case srvKernel:
			listed := "idle"
			if c.busy && !c.listedIdle {
				listed, c.busySeen = "busy", true
			}
			out[id] = activity.Result{State: activity.Answered, Kernels: 1, Busy: listed == "busy", LastActivity: c.last, Connections: c.conns,
				KernelStates: []activity.KernelState{{ID: "k-" + id, ExecutionState: listed, LastActivity: c.last, Connections: c.conns}}}
		case srvDown:
			if w.now.Sub(c.started) < grace {
				out[id] = activity.Result{State: activity.Starting, Err: "no answer"}
			} else {
				out[id] = activity.Result{State: activity.Unreachable, LastActivity: c.started, Err: "no answer"}
			}
		case srvError:
			out[id] = activity.Result{State: activity.Unknown, Err: "status 500"}
		}
		r := out[id]
		r.StartedAt, r.CPUSample = c.started, &activity.CPUSample{Used: c.cpuUsed, At: w.now}
		out[id] = r
	}
	mem, err := activity.LoadMemory(w.memFile)
	if err != nil {
		w.violate("load memory: %v", err)
	}
	mem.Observe(out, w.now, activity.DefaultCPUThreshold)
	if err := mem.Save(w.memFile); err != nil {
		w.violate("save memory: %v", err)
	}
	return out
}

// pass observes (the real Manager.List over the simulated engine), plans,
// lets students show up between plan and apply (before it, or racing it),
// applies with the real Applier, and checks.
func (w *world) pass(ctx context.Context, racing, settling bool) {
	r := w.rng
	w.stats.Passes++
	cfg, cur := w.config()
	// Settling confirms mass prunes, or removed courses would be held forever.
	allow := settling || r.IntN(2) == 0
	d := reconcile.NewDesired(cfg, cur)
	d.AllowMassPrune = allow
	d.Had = map[string]bool{}
	for name := range w.courses {
		d.Had[name] = true // the site's record: every course it ever had
	}
	observed, err := w.mgr.List(ctx, d.Adopts)
	if err != nil {
		w.violate("list: %v", err)
		return
	}
	act := w.probe()
	w.mu.Lock()
	w.planAt = w.now
	w.planned, w.snap, w.cfgSnap, w.retired = map[string]reconcile.Action{}, map[string]simCtr{}, map[string]simCourse{}, map[string]map[string]bool{}
	for id, c := range w.ctrs {
		w.snap[id] = *c
	}
	for n, sc := range w.courses {
		w.cfgSnap[n] = *sc
	}
	w.mu.Unlock()
	plan := reconcile.Plan(d, observed, act, w.planAt)
	if len(plan) != len(observed) {
		w.violate("plan has %d actions for %d containers", len(plan), len(observed))
	}
	for _, a := range plan {
		if a.Retires() {
			w.planned[a.ID] = a
		}
		if a.Kind == reconcile.Hold {
			w.stats.Holds++
		}
		if a.Kind == reconcile.Keep || a.Kind == reconcile.ReportStale {
			w.stats.HeldConn += b2i(strings.Contains(a.Reason, "open connection"))
			w.stats.HeldSeenBusy += b2i(strings.Contains(a.Reason, "seen busy"))
			w.stats.HeldCPU += b2i(strings.Contains(a.Reason, "% CPU"))
		}
		w.trace = append(w.trace, fmt.Sprintf("  plan %s %s %s: %s", a.Kind, a.Container, a.ID, a.Reason))
	}

	// Students show up after the plan: their hand-out is later than it.
	type visit struct {
		course, student string
		works, busy     bool
		foreign         bool
	}
	var visits []visit
	for range r.IntN(4) {
		if settling {
			break
		}
		v := visit{w.randomCourse(), w.randomStudent(), r.IntN(2) == 0, r.IntN(2) == 0, r.IntN(4) == 0}
		if len(w.planned) > 0 && r.IntN(2) == 0 {
			// Aim at a container the plan means to retire.
			ids := slices.Sorted(maps.Keys(w.planned))
			a := w.planned[ids[r.IntN(len(ids))]]
			v.course, v.student = a.Course, a.Student
		}
		visits = append(visits, v)
	}
	at := w.planAt.Add(time.Second)
	ap := &reconcile.Applier{Exec: w.mgr, Locks: w.locks, Concurrency: 1 + r.IntN(6)}
	var wg sync.WaitGroup
	if racing {
		for _, v := range visits {
			wg.Go(func() { w.spawn(ctx, v.course, v.student, at, v.works, v.busy, v.foreign) })
		}
	} else {
		for _, v := range visits {
			w.spawn(ctx, v.course, v.student, at, v.works, v.busy, v.foreign)
		}
	}
	outs, err := ap.Apply(ctx, plan)
	wg.Wait()
	if err != nil {
		w.violate("apply: %v", err)
	}
	for _, o := range outs {
		switch {
		case o.Done && o.Action.Kind == reconcile.Stop:
			w.stats.Stops++
		case o.Done:
			w.stats.Removes++
		case strings.Contains(o.Skipped, "handed out"):
			w.stats.SkippedHandedOut++
		case strings.Contains(o.Skipped, "replaced"):
			w.stats.SkippedReplaced++
		default:
			w.stats.SkippedOther++
		}
		if o.Done {
			w.trace = append(w.trace, fmt.Sprintf("  done %s %s", o.Action.Kind, o.Action.Container))
		} else {
			w.trace = append(w.trace, fmt.Sprintf("  skipped %s %s: %s", o.Action.Kind, o.Action.Container, o.Skipped))
		}
	}
	w.mu.Lock()
	w.planned = nil
	w.mu.Unlock()
}

// retiring is called by the simulated engine for every Stop and Remove, with
// w.mu held: the oracle.
func (w *world) retiring(op, id string) {
	a, ok := w.planned[id]
	if !ok {
		w.violate("%s of %s, which the plan does not retire (a hold, a keep, or not observed)", op, id)
		return
	}
	if op == "remove" && a.Kind != reconcile.Remove {
		w.violate("remove of %s, planned %s", a.Container, a.Kind)
	}
	if t := w.handout[id]; t.After(w.planAt) {
		w.violate("%s of %s, handed out at %s after the plan at %s", op, a.Container, t, w.planAt)
	}
	c, ok := w.snap[id]
	if !ok {
		w.violate("%s of %s, created after the plan", op, id)
		return
	}
	sc, known := w.cfgSnap[c.course]
	known = known && !sc.removed
	idle, lingering, fz, limit := w.defaults.Idle.Std(), w.defaults.Lingering.Std(), w.defaults.Freeze, w.defaults.RetireLimit
	if known {
		idle, lingering, fz = sc.co.Idle.Std(), sc.co.Lingering.Std(), sc.co.Freeze
		if sc.co.RetireLimit > 0 {
			limit = sc.co.RetireLimit
		}
	}
	if idle == 0 {
		idle = manifest.DefaultIdle
	}
	if lingering == 0 {
		lingering = manifest.DefaultLingering
	}
	if limit == 0 {
		limit = manifest.DefaultRetireLimit
	}
	frozen := slices.ContainsFunc(fz, func(f manifest.Freeze) bool {
		i := slices.IndexFunc(freezes, func(x struct {
			f  manifest.Freeze
			in func(time.Time) bool
		}) bool {
			return x.f == f
		})
		return freezes[i].in(w.planAt)
	})
	now := w.planAt
	if c.running && active(c, now, idle) {
		lingers := now.Sub(c.started) >= lingering
		switch {
		case !lingers:
			w.violate("%s of active %s (srv %d busy %v last %s started %s, idle %s)", op, c.name, c.srv, c.busy, c.last, c.started, idle)
		case frozen:
			w.violate("%s of active lingering %s inside a freeze window", op, c.name)
		default:
			w.stats.Lingering++
		}
	}
	if frozen && known && !sc.co.Archived && op == "remove" {
		w.violate("remove of %s of course %s inside a freeze window", c.name, c.course)
	}
	if w.retired[c.course] == nil {
		w.retired[c.course] = map[string]bool{}
	}
	w.retired[c.course][id] = true
	if n := len(w.retired[c.course]); n > limit {
		w.violate("%d retirements in course %s in one pass, limit %d", n, c.course, limit)
	}
}

// active is the oracle of "active" (docs/design.md): a server whose activity
// cannot be read (no port, an error, starting up); a busy kernel the server
// lists busy, or that a pass saw listed busy since its cell started (the
// server may list it idle later); an open connection; a computation at or
// above the CPU threshold all the time since the previous look (since the
// start, when restarted since or never looked at); or activity within idle.
func active(c simCtr, now time.Time, idle time.Duration) bool {
	window := maxTime(c.prevLook, c.started)
	if c.cpuRate >= activity.DefaultCPUThreshold && !c.cpuSince.After(window) {
		return true
	}
	last := c.started
	switch {
	case c.port == 0 || c.srv == srvError:
		return true
	case c.srv == srvDown && now.Sub(c.started) < grace:
		return true
	case c.srv == srvKernel:
		if c.conns > 0 || (c.busy && (!c.listedIdle || c.busySeen)) {
			return true
		}
		last = c.last
	}
	return now.Sub(last) < idle
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkUnique: no student ever has two containers.
func (w *world) checkUnique() {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]string{}
	for id, c := range w.ctrs {
		k := c.course + "/" + c.student
		if other, ok := seen[k]; ok {
			w.violate("student %s has two containers: %s and %s", k, other, id)
		}
		seen[k] = id
		if w.byName[c.name] != id {
			w.violate("name %s maps to %s, not %s", c.name, w.byName[c.name], id)
		}
	}
}

// simEngine is the containers.Engine of the world; only what the Manager's
// List, Get, Stop and Remove use is implemented.
type simEngine struct{ w *world }

var _ containers.Engine = (*simEngine)(nil)

var errUnused = errors.New("not used by the pass")

func (e *simEngine) raw(c *simCtr) containers.Raw {
	r := containers.Raw{ID: c.id, Name: c.name, ImageID: c.image, EngineState: "exited", Created: c.created, StartedAt: c.started}
	if c.running {
		r.EngineState = "running"
	}
	if !c.adopted {
		r.Labels = map[string]string{containers.LabelCourse: c.course, containers.LabelStudent: c.student,
			containers.LabelManagedBy: containers.ManagedBy, containers.LabelPort: strconv.Itoa(c.port), containers.LabelSite: worldSite}
	}
	if c.port != 0 {
		r.Ports = map[int]int{8888: c.port}
	}
	return r
}

func (e *simEngine) List(ctx context.Context) ([]containers.Raw, error) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	var out []containers.Raw
	for _, c := range e.w.ctrs {
		out = append(out, e.raw(c))
	}
	// Others' containers, which nothing may touch (retiring says so if
	// anything does): a database; stopped containers of another site and
	// of a tool that labels managed-by without a site, of a course the
	// world has; an unlabelled nbhosting-named one of a course it never
	// had.
	out = append(out, containers.Raw{ID: "foreign", Name: "postgres", EngineState: "running", Labels: map[string]string{"app": "db"}})
	other := func(id, site string) containers.Raw {
		l := map[string]string{containers.LabelCourse: "c0", containers.LabelStudent: id, containers.LabelManagedBy: containers.ManagedBy}
		if site != "" {
			l[containers.LabelSite] = site
		}
		return containers.Raw{ID: id, Name: "c0-x-" + id, ImageID: "sha256:theirs", EngineState: "exited", Labels: l}
	}
	out = append(out, other("othersite", "/srv/another-site"), other("nosite", ""),
		containers.Raw{ID: "unknowncourse", Name: "never-x-s1", ImageID: "sha256:theirs", EngineState: "exited"})
	return out, nil
}

// worldSite is the name of the world's site.
const worldSite = "/srv/world-site"

func (e *simEngine) Inspect(ctx context.Context, name string) (containers.Raw, error) {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	c, ok := e.w.ctrs[e.w.byName[name]]
	if !ok {
		return containers.Raw{}, fmt.Errorf("inspect %s: %w", name, containers.ErrNotFound)
	}
	return e.raw(c), nil
}

func (e *simEngine) Stop(ctx context.Context, id string, _ time.Duration) error {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.retiring("stop", id)
	if c, ok := e.w.ctrs[id]; ok {
		c.running = false
	}
	return nil
}

func (e *simEngine) Remove(ctx context.Context, id string) error {
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	e.w.retiring("remove", id)
	if c, ok := e.w.ctrs[id]; ok {
		delete(e.w.ctrs, id)
		delete(e.w.byName, c.name)
	}
	return nil
}

func (e *simEngine) Images(context.Context, []string) (map[string]containers.Image, error) {
	return nil, errUnused
}
func (e *simEngine) Create(context.Context, containers.Spec) (string, error) { return "", errUnused }
func (e *simEngine) Start(context.Context, string) error                     { return errUnused }
