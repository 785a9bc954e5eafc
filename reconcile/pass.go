package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Pass runs the container pass: observe (one container list, one image
// list), probe the running servers, plan, apply.
type Pass struct {
	Containers *containers.Manager
	Prober     *activity.Prober
	// Root is the data directory, for {root} in course tokens.
	Root string
	// Concurrency bounds the actions applied at once.
	Concurrency int
	Log         *slog.Logger
	// Had holds the courses of earlier config revisions (the site's
	// record), so that unlabelled nbhosting containers of a course
	// removed since are still the site's to retire; see Desired.Adopts.
	Had map[string]bool
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
		t := activity.Target{ID: c.ID, URL: c.URL(p.Containers.HostIP), StartedAt: c.StartedAt}
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

// Run does one pass: observe, plan at now, apply. It returns the plan and
// what became of each retirement.
func (p *Pass) Run(ctx context.Context, cfg *manifest.Config, allowMassPrune bool) ([]Action, []Outcome, error) {
	obs, err := p.Observe(ctx, cfg, allowMassPrune)
	if err != nil {
		return nil, nil, err
	}
	plan := Plan(obs.Desired, obs.Containers, obs.Activity, time.Now())
	ap := &Applier{Exec: p.Containers, Locks: p.Containers.Locks(), Concurrency: p.Concurrency, Log: p.Log}
	out, err := ap.Apply(ctx, plan)
	return plan, out, err
}
