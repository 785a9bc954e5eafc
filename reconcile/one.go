package reconcile

import (
	"cmp"
	"context"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// ObserveOne probes one container as Observe would in a pass — same
// target, same token, the probe's memory read (not saved: an operator's
// look must not shorten the window the next pass measures CPU use over),
// the front door's traffic added — so that an operator's action on one
// student decides "active" exactly as the pass does. probed is false for a
// container that is not running or has no port.
func (p *Pass) ObserveOne(ctx context.Context, cfg *manifest.Config, c containers.Container) (r activity.Result, probed bool) {
	if c.State != containers.Running || c.Port == 0 {
		return activity.Result{}, false
	}
	cc := cfg.Defaults.Container
	if co, ok := cfg.Courses[c.Course]; ok {
		cc = co.Container
	}
	t := p.target(c)
	// Without its token the server refuses the probe, and a refused probe
	// is never idle: the student counts as active, which errs on the safe
	// side.
	t.Token, _ = p.Containers.Token(cc, containers.Vars{Root: p.Root, Course: c.Course, Student: c.Student, UID: c.UID, Port: c.Port})
	act, _, _ := p.Prober.Round(ctx, []activity.Target{t}, p.MemoryFile, p.CPUThreshold)
	r, probed = act[c.ID]
	if p.Traffic != nil {
		if tr, seen := p.Traffic.Traffic(c.Course, c.Student); probed && seen {
			r.FrontDoor = &tr
		}
	}
	return r, probed
}

// Active says whether a student's container is in use, by the rule the
// plan retires idle containers with: a running server is idle when nothing
// holds it and its last activity is at least the course's idle time old
// (activity.Result.Idle); anything else running — active, starting,
// unknown, not probed — counts as active. A stopped container is not.
// why says it in the plan's words.
func Active(co manifest.Course, c containers.Container, r activity.Result, probed bool, now time.Time) (active bool, why string) {
	if c.State != containers.Running {
		return false, "stopped"
	}
	idleFor := cmp.Or(co.Idle.Std(), manifest.DefaultIdle)
	if probed && r.Idle(now, idleFor) {
		return false, idleText(r, now) + " (idle: " + idleFor.String() + ")"
	}
	return true, activityText(r, probed, now)
}

// target is what the probe needs of running container c, but its token.
// On Swarm the server is on its node (Host), not on HostIP, and its CPU
// time is its task's.
func (p *Pass) target(c containers.Container) activity.Target {
	return activity.Target{ID: c.ID, CPUID: c.CPUID(), URL: p.Containers.URLOf(c), StartedAt: c.StartedAt,
		HandedOut: p.Containers.Locks().HandedOut(c.Course, c.Student)}
}
