// Package reconcile drives student containers toward the desired state:
// it observes the engine, plans with a pure function, and applies the plan
// (the container pass).
package reconcile

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Kind is what an action does.
type Kind string

// The kinds of action. Only Stop and Remove change anything here; a WarmUp
// (warm.go) is carried out by the site, which spawns.
const (
	Keep        Kind = "keep"
	Stop        Kind = "stop"
	Remove      Kind = "remove"
	ReportStale Kind = "report-stale" // kept, but running a stale image
	Hold        Kind = "hold"         // a Stop, Remove or WarmUp withheld by a guard
)

// Action is one decision about one container, with its reason.
type Action struct {
	Kind      Kind   `json:"kind"`
	Course    string `json:"course"`
	Student   string `json:"student"`
	Container string `json:"container"`
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	// Held is what a Hold would have done without its guard, and Guard
	// which guard withheld it.
	Held  Kind  `json:"held,omitempty"`
	Guard Guard `json:"guard,omitempty"`
	// State and ImageID are what the plan saw; Apply re-checks them.
	State   containers.State `json:"state"`
	ImageID string           `json:"image_id"`
	// Warm marks a warm server nobody has visited yet, kept or held in its
	// window, and a warm-up that will start one (what status counts).
	Warm bool `json:"warm,omitempty"`
	// At is the time of the plan: a container handed out after it is left
	// alone by Apply.
	At time.Time `json:"at"`
}

// Retires reports whether the action stops or removes a container.
func (a Action) Retires() bool { return a.Kind == Stop || a.Kind == Remove }

// CourseState is one course of the desired state.
type CourseState struct {
	Course manifest.Course
	// ImageID is the course's current image (what <image>:latest resolves
	// to); empty when it is not built yet, and then nothing is stale.
	ImageID string
	// Settings is the containers.SettingsKey of the course's container:
	// settings; a container made with others is stale. Empty: not known
	// (nothing is stale for its settings).
	Settings string
	// Expected are the students expected in the course's open warm window
	// (the site reads them from its history or the course's list); empty
	// outside a window.
	Expected []string
}

// Desired is the state the pass drives toward.
type Desired struct {
	Courses map[string]CourseState
	// Defaults apply to containers of courses no longer in courses.yaml.
	Defaults manifest.Defaults
	// AllowMassPrune confirms a revision that removes more than half of
	// the site's courses.
	AllowMassPrune bool
	// Had holds the courses of earlier config revisions, as the site
	// recorded them: with those of Courses, they are the courses whose
	// unlabelled nbhosting containers the site adopts (see Adopts).
	Had map[string]bool
	// NoAdopt is set by engine.adopt: false: the site adopts nothing.
	NoAdopt bool
	// Suspended holds the courses put on hold at run time (nbh-sync
	// suspend), each with why; a course with suspend: true in
	// courses.yaml is on hold too (see Desired.Suspension).
	Suspended map[string]string
}

// Suspension says why course is on hold, "" when it is not: courses.yaml's
// suspend: true, else a hold at run time.
func (d Desired) Suspension(course string) string {
	if st, ok := d.Courses[course]; ok && st.Course.Suspend {
		return "course " + course + " is suspended in courses.yaml"
	}
	if why := d.Suspended[course]; why != "" {
		return why
	}
	return ""
}

// Adopts reports whether the site takes unlabelled nbhosting containers of
// course (named course-x-student, no labels) as its own: only when the
// course is in courses.yaml now or was in an earlier revision, and never
// when the config says engine.adopt: false. An unlabelled container of any
// other course is another tool's.
func (d Desired) Adopts(course string) bool {
	if d.NoAdopt {
		return false
	}
	_, now := d.Courses[course]
	return now || d.Had[course]
}

// NewDesired builds the desired state from a config and the current image
// ID of each image name.
func NewDesired(cfg *manifest.Config, current map[string]string) Desired {
	d := Desired{Courses: map[string]CourseState{}, Defaults: cfg.Defaults, NoAdopt: !cfg.Engine.Adopts()}
	for name, co := range cfg.Courses {
		co.Name = name
		d.Courses[name] = NewCourseState(co, current[co.ImageOf()])
	}
	return d
}

// NewCourseState is the desired state of course co whose current image is
// imageID ("" when not built yet).
func NewCourseState(co manifest.Course, imageID string) CourseState {
	return CourseState{Course: co, ImageID: imageID, Settings: containers.SettingsKey(co.Container)}
}

// Stale says what makes container c stale in its course, empty when it is
// current: it was made from another image than the current one, or with
// other container: settings. Nothing is stale before a first build.
func (st CourseState) Stale(c containers.Container) string {
	switch {
	case st.ImageID == "":
		return ""
	case c.ImageID != st.ImageID:
		was, cur := shortid.Images(c.ImageID, st.ImageID)
		return fmt.Sprintf("image %s is stale (current %s)", cmp.Or(was, "(none)"), cmp.Or(cur, "(none)"))
	case c.SettingsDiffer(st.Settings):
		return fmt.Sprintf("container settings %s are stale (courses.yaml has %s)", c.Settings, st.Settings)
	}
	return ""
}

// Plan decides what to do with every observed container. It is pure:
// the same inputs give the same sorted actions, one per container, then
// the warm-ups of open warm windows (PlanWarm).
//
// The rules, in order: a container of a removed or archived course is
// removed once idle; a stopped one is removed if its image is stale, kept
// otherwise; a running one idle for the course's idle time is stopped, or
// removed if stale — idle meaning nothing holds it (a busy kernel, an open
// connection, a kernel seen busy and silent since, CPU use, a websocket
// open through the front door: see activity.Result.Holds) and its last
// kernel or terminal activity, or request through the front door, is that
// old; one older than lingering is stopped (or removed if
// stale) even if active; an active one is kept, and reported if stale; one
// whose activity cannot be read is kept. Then the guards: freeze windows
// suspend retirement for staleness and lingering; the mass-prune guard holds
// the removal of more than half of the courses; the per-course retire limit
// holds the excess of a pass. In an open warm window, an expected student's
// server nobody has visited is spared the idle rule, or replaced when its
// image is stale (see decideWarm).
func Plan(desired Desired, observed []containers.Container, act map[string]activity.Result, now time.Time) []Action {
	cs := slices.Clone(observed)
	slices.SortFunc(cs, func(a, b containers.Container) int {
		return cmp.Or(cmp.Compare(a.Course, b.Course), cmp.Compare(a.Student, b.Student), cmp.Compare(a.Name, b.Name))
	})
	actions := make([]Action, 0, len(cs))
	fz := freezes{}
	for _, c := range cs {
		a := decide(desired, c, act, fz, now)
		a.Course, a.Student, a.Container, a.ID = c.Course, c.Student, c.Name, c.ID
		a.State, a.ImageID, a.At = c.State, c.ImageID, now
		actions = append(actions, a)
	}
	massPrune(desired, cs, actions)
	suspended(desired, actions)
	retireLimit(desired, cs, act, actions)
	return append(actions, PlanWarm(desired, cs, act, actions, now, 0)...)
}

func decide(d Desired, c containers.Container, act map[string]activity.Result, fz freezes, now time.Time) Action {
	if c.Adopted && !d.Adopts(c.Course) {
		// Observe never lists these; a plan made from other inputs still
		// never touches them.
		if d.NoAdopt {
			return Action{Kind: Keep, Reason: "not this site's: unlabelled, and courses.yaml says engine.adopt: false"}
		}
		return Action{Kind: Keep, Reason: "not this site's: unlabelled, and course " + c.Course + " was never in its courses.yaml"}
	}
	st, known := d.Courses[c.Course]
	co := st.Course
	if !known {
		co = manifest.Course{Name: c.Course, Idle: d.Defaults.Idle, Lingering: d.Defaults.Lingering, Freeze: d.Defaults.Freeze}
	}
	idleFor := cmp.Or(co.Idle.Std(), manifest.DefaultIdle)
	frozen, window := fz.of(c.Course, co.Freeze, now)
	r, probed := act[c.ID]

	if !known || co.Archived {
		why := "course " + c.Course + " is no longer in courses.yaml"
		if known {
			why = "course " + c.Course + " is archived"
		}
		switch {
		case c.State == containers.Stopped:
			return Action{Kind: Remove, Reason: why + "; the container is stopped"}
		case probed && r.Idle(now, idleFor):
			return Action{Kind: Remove, Reason: why + "; " + idleText(r, now)}
		case lingers(c, co, now):
			if frozen {
				return hold(Remove, why+"; "+lingerText(c, co, now)+", but "+window)
			}
			return Action{Kind: Remove, Reason: why + "; " + lingerText(c, co, now)}
		default:
			return Action{Kind: Keep, Reason: why + "; removed once idle (" + activityText(r, probed, now) + ")"}
		}
	}

	staleText := st.Stale(c)
	stale := staleText != ""
	if c.State == containers.Stopped {
		switch {
		case !stale:
			return Action{Kind: Keep, Reason: "stopped, image current"}
		case frozen:
			return hold(Remove, "stopped, "+staleText+", but "+window)
		default:
			return Action{Kind: Remove, Reason: "stopped, " + staleText}
		}
	}

	if warmServer(st, c, r, probed, now) {
		return decideWarm(st, r, now, stale, staleText)
	}
	switch {
	case probed && r.Idle(now, idleFor):
		switch {
		case !stale:
			return Action{Kind: Stop, Reason: idleText(r, now) + " (idle: " + idleFor.String() + "), image current"}
		case frozen:
			return Action{Kind: Stop, Reason: idleText(r, now) + ", " + staleText + "; stopped, not removed: " + window}
		default:
			return Action{Kind: Remove, Reason: idleText(r, now) + ", " + staleText}
		}
	case lingers(c, co, now):
		k, text := Stop, lingerText(c, co, now)
		if holds := r.Holds(now); probed && len(holds) > 0 {
			// lingering is the hard cap: it stops a held server too.
			text += ", although " + strings.Join(holds, ", ")
		}
		if stale {
			k, text = Remove, text+", "+staleText
		}
		if frozen {
			return hold(k, text+", but "+window)
		}
		return Action{Kind: k, Reason: text}
	case stale:
		return Action{Kind: ReportStale, Reason: activityText(r, probed, now) + ", " + staleText + "; removed once idle"}
	default:
		return Action{Kind: Keep, Reason: activityText(r, probed, now) + ", image current"}
	}
}

// Guard names what withholds a Stop, Remove or WarmUp (an Action of kind
// Hold).
type Guard string

// The guards of a plan.
const (
	GuardFreeze      Guard = "freeze"       // a freeze window of the course
	GuardMassPrune   Guard = "mass-prune"   // the revision removes most courses: confirm with --allow-mass-prune
	GuardRetireLimit Guard = "retire-limit" // the course's retire-limit for one pass is reached
	GuardSuspended   Guard = "suspended"    // the course is on hold (suspend: true, or nbh-sync suspend)
)

// withhold turns a into a Hold by guard g, the reason told after a's own.
func withhold(a Action, g Guard, why string) Action {
	a.Kind, a.Held, a.Guard = Hold, a.Kind, g
	a.Reason += "; held: " + why
	return a
}

func hold(k Kind, reason string) Action {
	return Action{Kind: Hold, Held: k, Guard: GuardFreeze, Reason: reason}
}

// lingers reports whether a running container has been up longer than the
// course's lingering limit.
func lingers(c containers.Container, co manifest.Course, now time.Time) bool {
	l := cmp.Or(co.Lingering.Std(), manifest.DefaultLingering)
	return !c.StartedAt.IsZero() && now.Sub(c.StartedAt) >= l
}

func lingerText(c containers.Container, co manifest.Course, now time.Time) string {
	return fmt.Sprintf("running for %s, beyond lingering (%s)", round(now.Sub(c.StartedAt)), cmp.Or(co.Lingering.Std(), manifest.DefaultLingering))
}

func idleText(r activity.Result, now time.Time) string {
	var text string
	switch {
	case r.State == activity.Unreachable:
		text = fmt.Sprintf("server unreachable at two looks, up %s", round(now.Sub(r.LastActivity)))
	case r.Kernels == 0:
		text = fmt.Sprintf("no kernel, idle for %s", round(now.Sub(r.Last())))
	default:
		text = fmt.Sprintf("idle for %s", round(now.Sub(r.Last())))
	}
	if r.FrontDoor != nil {
		text += " (" + r.FrontDoor.String(now) + ")"
	}
	return text
}

func activityText(r activity.Result, probed bool, now time.Time) string {
	holds := r.Holds(now)
	switch {
	case !probed:
		return "activity not probed"
	case len(holds) > 0:
		return "active (" + strings.Join(holds, ", ") + ")"
	case r.FrontDoor != nil && r.FrontDoor.Last.After(r.LastActivity) && (r.State == activity.Answered || r.State == activity.Unreachable):
		return "active (" + r.FrontDoor.String(now) + ")"
	case r.State == activity.Answered:
		return fmt.Sprintf("active (last activity %s ago)", round(now.Sub(r.LastActivity)))
	case r.State == activity.Starting:
		return "server starting"
	default:
		return fmt.Sprintf("activity unknown (%s)", r.Err)
	}
}

// frozen reports whether one of the windows is open at now: some
// activation t of its cron has t <= now < t+for. The first activation after
// now-for is the only candidate.
func frozen(fs []manifest.Freeze, now time.Time) (bool, string) {
	for _, f := range fs {
		if t, ok := openWindow(f.Cron, f.For.Std(), now); ok {
			return true, fmt.Sprintf("freeze window %q for %s open since %s", f.Cron, f.For, t.Format(time.RFC3339))
		}
	}
	return false, ""
}

// parseCron parses a window's cron spec: a variable so that a test can
// count the parses of a plan.
var parseCron = manifest.CronParser.Parse

// freezes memoizes frozen per course for one plan: every container of a
// course has the same freeze windows and the same now, and parsing a cron
// spec costs more than deciding about a container.
type freezes map[string]freeze

type freeze struct {
	frozen bool
	window string
}

func (fz freezes) of(course string, fs []manifest.Freeze, now time.Time) (bool, string) {
	f, ok := fz[course]
	if !ok {
		f.frozen, f.window = frozen(fs, now)
		fz[course] = f
	}
	return f.frozen, f.window
}

// massPrune holds the retirements of removed courses when the revision
// removes more than half of the site's courses: those of courses.yaml and
// the removed ones that still have containers here. Containers a plan
// leaves alone as not the site's count for nothing.
func massPrune(d Desired, cs []containers.Container, actions []Action) {
	if d.AllowMassPrune {
		return
	}
	removed := map[string]bool{}
	for _, c := range cs {
		if _, ok := d.Courses[c.Course]; !ok && (!c.Adopted || d.Adopts(c.Course)) {
			removed[c.Course] = true
		}
	}
	total := len(d.Courses) + len(removed)
	if 2*len(removed) <= total {
		return
	}
	names := slices.Sorted(maps.Keys(removed))
	for i, a := range actions {
		if removed[a.Course] && a.Retires() {
			actions[i] = withhold(a, GuardMassPrune, fmt.Sprintf("this revision removes %d of the site's %d courses (%s), confirm with --allow-mass-prune",
				len(removed), total, strings.Join(names, ", ")))
		}
	}
}

// suspended holds every retirement of a course on hold. It comes before
// the retire limit, so that held retirements take none of a pass's quota.
func suspended(d Desired, actions []Action) {
	for i, a := range actions {
		if !a.Retires() {
			continue
		}
		if why := d.Suspension(a.Course); why != "" {
			actions[i] = withhold(a, GuardSuspended, why+" (nbh-sync resume "+a.Course+" lifts a hold made at run time)")
		}
	}
}

// retireLimit holds, per course, the retirements beyond its retire limit.
// Stopped containers go first (retiring them interrupts nobody), then
// running ones idle the longest.
func retireLimit(d Desired, cs []containers.Container, act map[string]activity.Result, actions []Action) {
	byCourse := map[string][]int{}
	for i, a := range actions {
		if a.Retires() {
			byCourse[a.Course] = append(byCourse[a.Course], i)
		}
	}
	for course, idx := range byCourse {
		limit := d.Defaults.RetireLimit
		if st, ok := d.Courses[course]; ok && st.Course.RetireLimit > 0 {
			limit = st.Course.RetireLimit
		}
		limit = cmp.Or(limit, manifest.DefaultRetireLimit)
		if len(idx) <= limit {
			continue
		}
		slices.SortStableFunc(idx, func(i, j int) int {
			ci, cj := cs[i], cs[j]
			if ci.State != cj.State {
				return cmp.Compare(stateRank(ci.State), stateRank(cj.State))
			}
			return act[ci.ID].Last().Compare(act[cj.ID].Last())
		})
		for _, i := range idx[limit:] {
			actions[i] = withhold(actions[i], GuardRetireLimit, fmt.Sprintf("retire-limit %d reached for course %s in this pass (%d due), next pass", limit, course, len(idx)))
		}
	}
}

func stateRank(s containers.State) int {
	if s == containers.Stopped {
		return 0
	}
	return 1
}

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}
