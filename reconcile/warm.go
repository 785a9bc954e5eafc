package reconcile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
)

// WarmUp is the kind of a warm-up: start an expected student's server
// before the class, on the current image. Apply leaves it to the site,
// which spawns it (see site.Pass).
const WarmUp Kind = "warm"

// The guards of warm windows.
const (
	// GuardWarm spares an unvisited warm server the idle rule while its
	// window is open.
	GuardWarm Guard = "warm"
	// GuardWarmMax holds back a warm-up beyond the course's max or the
	// site's warm-max: what the memory caps keep from starting.
	GuardWarmMax Guard = "warm-max"
	// GuardWarmPace holds back a warm-up beyond the ones a pass makes
	// (DefaultWarmPerPass): a later pass starts it. Kept apart from
	// GuardWarmMax so that pacing is never read as a cap to raise.
	GuardWarmPace Guard = "warm-pace"
)

// DefaultWarmPerPass is how many warm-ups one pass makes at most: servers
// start a few at a time, so that the engine keeps serving the students
// already working; the rest wait for the next pass.
const DefaultWarmPerPass = 8

// openWindow reports the start of the activation of cron whose window of
// length d holds now (start <= now < start+d).
func openWindow(cron string, d time.Duration, now time.Time) (time.Time, bool) {
	sched, err := parseCron(cron)
	if err != nil || d <= 0 {
		return time.Time{}, false // validation rejects these; a plan never fails
	}
	t := sched.Next(now.Add(-d))
	return t, !t.After(now)
}

// WarmWindow is the open warm window of a course: the first of its
// windows open at now.
func WarmWindow(co manifest.Course, now time.Time) (w manifest.Warm, start time.Time, open bool) {
	for _, w := range co.Warm {
		if t, ok := openWindow(w.Cron, w.For.Std(), now); ok {
			return w, t, true
		}
	}
	return manifest.Warm{}, time.Time{}, false
}

// NextWarm is the next start of one of the course's warm windows after
// now, or zero without any.
func NextWarm(co manifest.Course, now time.Time) time.Time {
	var next time.Time
	for _, w := range co.Warm {
		sched, err := manifest.CronParser.Parse(w.Cron)
		if err != nil {
			continue
		}
		if t := sched.Next(now); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

func warmText(w manifest.Warm, start time.Time) string {
	return fmt.Sprintf("warm window %q until %s", w.Cron, start.Add(w.For.Std()).Format("15:04"))
}

// visited reports whether anyone has used the server since it started:
// a warm server nobody opened has no kernel, no terminal, no connection,
// no front-door request and no activity after its start.
func visited(r activity.Result, c containers.Container, now time.Time) bool {
	return r.Kernels > 0 || r.Terminals > 0 || r.Connections > 0 || r.FrontDoor != nil ||
		len(r.Holds(now)) > 0 || r.LastActivity.After(c.StartedAt)
}

// warmServer reports whether c is an unvisited server of an expected
// student of a course whose warm window is open: the window spares it.
func warmServer(st CourseState, c containers.Container, r activity.Result, probed bool, now time.Time) bool {
	if c.State != containers.Running || !probed || !slices.Contains(st.Expected, c.Student) {
		return false
	}
	if _, _, open := WarmWindow(st.Course, now); !open {
		return false
	}
	return !visited(r, c, now)
}

// decideWarm is the rule of warm windows for a running container of an
// expected student that nobody has visited, in its window: one on a stale
// image is replaced (removed now, warmed again on the current image: it
// interrupts nobody); a current one idle is held, not stopped.
func decideWarm(st CourseState, r activity.Result, now time.Time, stale bool, staleText string) Action {
	w, start, _ := WarmWindow(st.Course, now)
	idleFor := cmp.Or(st.Course.Idle.Std(), manifest.DefaultIdle)
	switch {
	case stale:
		return Action{Kind: Remove, Reason: "warm, never visited, " + staleText + ": replaced with the current image (" + warmText(w, start) + ")"}
	case r.Idle(now, idleFor):
		return Action{Kind: Hold, Held: Stop, Guard: GuardWarm, Warm: true, Reason: idleText(r, now) + ", warm, never visited; held: " + warmText(w, start)}
	default:
		return Action{Kind: Keep, Warm: true, Reason: "warm, not visited yet, image current (" + warmText(w, start) + ")"}
	}
}

// PlanWarm decides the warm-ups of a pass, pure like Plan: for each course
// whose warm window is open, each expected student whose server is not
// running (or is replaced by actions) gets a WarmUp, in course and student
// order, unless a cap holds it back (a Hold of guard GuardWarmMax: the
// window's max for the course, the site's warm-max) or the pass has made
// perPass already (guard GuardWarmPace; 0 means DefaultWarmPerPass). Unvisited warm servers already running count
// against the caps.
func PlanWarm(d Desired, observed []containers.Container, act map[string]activity.Result, actions []Action, now time.Time, perPass int) []Action {
	perPass = cmp.Or(perPass, DefaultWarmPerPass)
	siteMax := cmp.Or(d.Defaults.WarmMax, manifest.DefaultWarmMax)
	removed := map[string]bool{}
	for _, a := range actions {
		if a.Kind == Remove {
			removed[a.ID] = true
		}
	}
	running := map[[2]string]bool{}
	warm := map[string]int{}
	siteWarm := 0
	for _, c := range observed {
		if c.State != containers.Running || removed[c.ID] {
			continue
		}
		running[[2]string{c.Course, c.Student}] = true
		r, probed := act[c.ID]
		if st, ok := d.Courses[c.Course]; ok && warmServer(st, c, r, probed, now) {
			warm[c.Course]++
			siteWarm++
		}
	}
	var out []Action
	made := 0
	for _, name := range slices.Sorted(maps.Keys(d.Courses)) {
		st := d.Courses[name]
		w, start, open := WarmWindow(st.Course, now)
		if !open || st.Course.Archived || st.ImageID == "" {
			continue
		}
		max := cmp.Or(w.Max, manifest.DefaultWarmMax)
		for _, s := range slices.Sorted(slices.Values(st.Expected)) {
			if running[[2]string{name, s}] {
				continue
			}
			a := Action{Kind: WarmUp, Course: name, Student: s, Container: naming.Container(name, s), At: now, ImageID: st.ImageID,
				Reason: "expected student, " + warmText(w, start)}
			switch {
			case warm[name] >= max:
				a = withhold(a, GuardWarmMax, fmt.Sprintf("course %s has %d warm servers, its max", name, max))
			case siteWarm >= siteMax:
				a = withhold(a, GuardWarmMax, fmt.Sprintf("the site has %d warm servers, its warm-max", siteMax))
			case made >= perPass:
				a = withhold(a, GuardWarmPace, fmt.Sprintf("%d warm-ups in this pass already, next pass", perPass))
			default:
				a.Warm = true
				warm[name]++
				siteWarm++
				made++
			}
			out = append(out, a)
		}
	}
	return out
}
