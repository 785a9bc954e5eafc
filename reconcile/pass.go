package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// DefaultConcurrency is how many retirements a pass applies at once when
// Pass.Concurrency is not set: stops wait on the server's shutdown (up to the
// stop timeout each), so one at a time makes a roll-out over many idle
// containers take minutes.
const DefaultConcurrency = 4

// Pass runs the container pass: observe (one container list, one image
// list), probe the running servers, plan, apply. It is the one path every
// container pass takes: the daemon's, the command line's (through site),
// the tests' and the benchmark's.
type Pass struct {
	Containers *containers.Manager
	Prober     *activity.Prober
	// Root is the data directory, for {root} in course tokens.
	Root string
	// Concurrency bounds the actions applied at once; 0 means
	// DefaultConcurrency.
	Concurrency int
	// Now is the clock plans are made at; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
	// MemoryFile keeps what the probe remembers between passes (kernels
	// seen busy, CPU time at the last look: activity.Memory); empty keeps
	// nothing, so every pass looks afresh.
	MemoryFile string
	// CPUThreshold is the share of one core above which a container is
	// working; activity.DefaultCPUThreshold when zero.
	CPUThreshold float64
	// Traffic is what the students' front door saw of each server; nil
	// without a front door.
	Traffic activity.TrafficSource
	// Had holds the courses of earlier config revisions (the site's
	// record), so that unlabelled nbhosting containers of a course
	// removed since are still the site's to retire; see Desired.Adopts.
	Had map[string]bool
	// Suspended holds the courses on hold at run time, with why: their
	// containers are not retired (see Desired.Suspended).
	Suspended map[string]string
	// Expected says who is expected in a course's open warm window w (see
	// CourseState.Expected); nil expects nobody, so nothing is warmed.
	Expected func(ctx context.Context, co manifest.Course, w manifest.Warm, now time.Time) ([]string, error)
}

// Result is what one pass saw, decided and did.
type Result struct {
	// At is the time the plan was made at.
	At       time.Time
	Observed Observed
	Actions  []Action
	// Outcomes say what became of each retirement; empty for a preview.
	Outcomes []Outcome
}

// Observed is everything a plan is made from.
type Observed struct {
	Desired    Desired                    `json:"-"`
	Containers []containers.Container     `json:"containers"`
	Activity   map[string]activity.Result `json:"activity"`
	// Memory is the probe's memory brought up to date by this
	// observation; Remember keeps it.
	Memory *activity.Memory `json:"-"`
	// CPUEngineReads counts the engine calls made to read CPU time (one
	// per running container when its cgroup is not on this host), apart
	// from the pass's constant engine calls.
	CPUEngineReads int `json:"cpu_engine_reads,omitempty"`
}

// Observe reads the engine and probes every running managed container.
func (p *Pass) Observe(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) (Observed, error) {
	// The engine's two answers are asked for at once: observing takes as
	// long as the longer (the list of every container), not their sum.
	// Which containers are adopted depends on the courses alone.
	adopt := NewDesired(cfg, nil)
	adopt.Had = p.Had
	type listed struct {
		cs  []containers.Container
		err error
	}
	lists := make(chan listed, 1)
	go func() {
		cs, err := p.Containers.List(ctx, adopt.Adopts)
		lists <- listed{cs, err}
	}()
	cur, err := p.Containers.CurrentImages(ctx, cfg.ImageNames())
	l := <-lists
	if err != nil {
		return Observed{}, fmt.Errorf("observe images: %w", err)
	}
	d := NewDesired(cfg, cur)
	d.AllowMassPrune = allowMassPrune
	d.Had = p.Had
	d.Suspended = p.Suspended
	cs := l.cs
	if l.err != nil {
		return Observed{}, fmt.Errorf("observe containers: %w", l.err)
	}
	var targets []activity.Target
	for _, c := range cs {
		if c.State != containers.Running || c.Port == 0 {
			continue
		}
		t := p.target(c)
		// A course gone from courses.yaml has only the defaults left to
		// say its token. A server that refuses the token never looks
		// idle, so it is never removed.
		cc := d.Defaults.Container
		if st, ok := d.Courses[c.Course]; ok {
			cc = st.Course.Container
		}
		v := containers.Vars{Root: p.Root, Course: c.Course, Student: c.Student, UID: c.UID, Port: c.Port}
		if t.Token, err = p.Containers.Token(cc, v); err != nil && p.Log != nil {
			// Probed without it, the server refuses: not idle, kept.
			p.Log.WarnContext(ctx, "probe without the container's token", "container", c.Name, "err", err)
		}
		targets = append(targets, t)
	}
	act, mem, err := p.Prober.Round(ctx, targets, p.MemoryFile, p.CPUThreshold)
	if err != nil && p.Log != nil {
		// Starting afresh only forgets reasons to keep servers (kernels
		// seen busy, the CPU baseline): the next pass has them again.
		p.Log.WarnContext(ctx, "activity memory unreadable, starting afresh", "err", err)
	}
	if p.Traffic != nil {
		for _, c := range cs {
			r, probed := act[c.ID]
			if tr, seen := p.Traffic.Traffic(c.Course, c.Student); probed && seen {
				r.FrontDoor = &tr
				act[c.ID] = r
			}
		}
	}
	obs := Observed{Desired: d, Containers: cs, Activity: act, Memory: mem}
	for _, r := range act {
		if r.CPUEngineCall {
			obs.CPUEngineReads++
		}
	}
	return obs, nil
}

// Remember keeps the probe's memory of obs for the next pass (and the next
// daemon). Only a pass that applies its plan calls it: a plan or a why
// reads the memory and leaves it, so that it does not shorten the window
// the next pass measures CPU use over.
func (p *Pass) Remember(obs Observed) error {
	if p.MemoryFile == "" || obs.Memory == nil {
		return nil
	}
	return obs.Memory.Save(p.MemoryFile)
}

// ObserveError is a pass that could not read the engine: it planned and
// applied nothing, so nothing may be concluded from its (empty) result —
// least of all which images are unused.
type ObserveError struct{ Err error }

func (e *ObserveError) Error() string { return e.Err.Error() }
func (e *ObserveError) Unwrap() error { return e.Err }

// Preview observes and plans, applying nothing: what Run would do now.
func (p *Pass) Preview(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) (Result, error) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	// The plan is dated before the observation: a student handed their
	// container while the engine is being read then counts as handed out
	// since the plan, and Apply leaves that container alone.
	at := now()
	obs, err := p.Observe(ctx, cfg, allowMassPrune)
	if err != nil {
		return Result{At: at}, &ObserveError{Err: err}
	}
	p.expect(ctx, obs.Desired, at)
	return Result{At: at, Observed: obs, Actions: Plan(obs.Desired, obs.Containers, obs.Activity, at)}, nil
}

// expect fills in the expected students of the courses whose warm window
// is open at now. A list that cannot be read warms nobody in that course
// (it is logged): a warm window is a convenience, never a reason to fail
// the pass.
func (p *Pass) expect(ctx context.Context, d Desired, now time.Time) {
	if p.Expected == nil {
		return
	}
	for name, st := range d.Courses {
		w, _, open := WarmWindow(st.Course, now)
		if !open || st.Course.Archived {
			continue
		}
		students, err := p.Expected(ctx, st.Course, w, now)
		if err != nil {
			if p.Log != nil {
				p.Log.WarnContext(ctx, "warm window: expected students unknown", "course", name, "err", err)
			}
			continue
		}
		st.Expected = students
		d.Courses[name] = st
	}
}

// Run does one pass: observe, plan, apply, Concurrency retirements at a
// time. It keeps the probe's memory for the next pass. The result holds the
// plan and what became of each retirement; when the engine cannot be read
// the error is an *ObserveError and the result holds no plan.
func (p *Pass) Run(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) (Result, error) {
	res, err := p.Preview(ctx, cfg, allowMassPrune)
	if err != nil {
		return res, err
	}
	if err := p.Remember(res.Observed); err != nil && p.Log != nil {
		p.Log.WarnContext(ctx, "activity memory not kept", "err", err)
	}
	ap := &Applier{Exec: p.Containers, Locks: p.Containers.Locks(), Traffic: p.Traffic, Concurrency: cmp.Or(p.Concurrency, DefaultConcurrency), Log: p.Log}
	res.Outcomes, err = ap.Apply(ctx, res.Actions)
	return res, err
}
