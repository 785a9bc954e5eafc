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
	// Had holds the courses of earlier config revisions (the site's
	// record), so that unlabelled nbhosting containers of a course
	// removed since are still the site's to retire; see Desired.Adopts.
	Had map[string]bool
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
}

// Observe reads the engine and probes every running managed container.
func (p *Pass) Observe(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) (Observed, error) {
	cur, err := p.Containers.CurrentImages(ctx, cfg.ImageNames())
	if err != nil {
		return Observed{}, fmt.Errorf("observe images: %w", err)
	}
	d := NewDesired(cfg, cur)
	d.AllowMassPrune = allowMassPrune
	d.Had = p.Had
	cs, err := p.Containers.List(ctx, d.Adopts)
	if err != nil {
		return Observed{}, fmt.Errorf("observe containers: %w", err)
	}
	var targets []activity.Target
	for _, c := range cs {
		if c.State != containers.Running || c.Port == 0 {
			continue
		}
		// On Swarm the server is on its node (Host), not on HostIP.
		t := activity.Target{ID: c.ID, URL: p.Containers.URLOf(c), StartedAt: c.StartedAt}
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
			p.Log.Warn("probe without the container's token", "container", c.Name, "err", err)
		}
		targets = append(targets, t)
	}
	act := p.Prober.Probe(ctx, targets)
	return Observed{Desired: d, Containers: cs, Activity: act}, nil
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
	return Result{At: at, Observed: obs, Actions: Plan(obs.Desired, obs.Containers, obs.Activity, at)}, nil
}

// Run does one pass: observe, plan, apply, Concurrency retirements at a
// time. The result holds the plan and what became of each retirement; when
// the engine cannot be read the error is an *ObserveError and the result
// holds no plan.
func (p *Pass) Run(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) (Result, error) {
	res, err := p.Preview(ctx, cfg, allowMassPrune)
	if err != nil {
		return res, err
	}
	ap := &Applier{Exec: p.Containers, Locks: p.Containers.Locks(), Concurrency: cmp.Or(p.Concurrency, DefaultConcurrency), Log: p.Log}
	res.Outcomes, err = ap.Apply(ctx, res.Actions)
	return res, err
}
