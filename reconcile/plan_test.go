package reconcile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/robfig/cron/v3"
)

// now is a Monday, 10:00 UTC.
var now = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

const v1, v2 = "sha256:1111111111111111", "sha256:2222222222222222"

func course(name string, mod ...func(*manifest.Course)) manifest.Course {
	co := manifest.Course{Name: name, Idle: manifest.Duration(2 * time.Hour), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 50}
	for _, m := range mod {
		m(&co)
	}
	return co
}

func desired(cos ...manifest.Course) Desired {
	d := Desired{Courses: map[string]CourseState{}, Defaults: manifest.Defaults{Idle: manifest.Duration(2 * time.Hour), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 50}}
	for _, co := range cos {
		d.Courses[co.Name] = NewCourseState(co, v2)
	}
	return d
}

// madeWith is c as made with the container: settings of key.
func madeWith(key string, c containers.Container) containers.Container {
	c.Settings = key
	return c
}

// ctr makes a container; id is also the student's name.
func ctr(course, id string, state containers.State, image string, up time.Duration) containers.Container {
	c := containers.Container{ID: id, Name: course + "-x-" + id, Course: course, Student: id, State: state, ImageID: image, Port: 30000}
	if state == containers.Running {
		c.StartedAt = now.Add(-up)
	}
	return c
}

func busy() activity.Result {
	return activity.Result{State: activity.Answered, Busy: true, Kernels: 1, LastActivity: now.Add(-5 * time.Hour)}
}
func lastActive(ago time.Duration) activity.Result {
	return activity.Result{State: activity.Answered, Kernels: 1, LastActivity: now.Add(-ago)}
}

// held is a server idle for 3 hours but for what mod sets.
func held(mod func(*activity.Result)) activity.Result {
	r := lastActive(3 * time.Hour)
	mod(&r)
	return r
}

func confirmed(d Desired) Desired { d.AllowMassPrune = true; return d }

func frozenMonday(co *manifest.Course) {
	co.Freeze = []manifest.Freeze{{Cron: "0 8 * * 1", For: manifest.Duration(4 * time.Hour)}}
}
func frozenTuesday(co *manifest.Course) {
	co.Freeze = []manifest.Freeze{{Cron: "0 8 * * 2", For: manifest.Duration(4 * time.Hour)}}
}
func archived(co *manifest.Course) { co.Archived = true }
func limit(n int) func(*manifest.Course) {
	return func(co *manifest.Course) { co.RetireLimit = n }
}

// want is the kind (and for holds, the held kind) plus a word the reason
// must contain.
type want struct {
	kind   Kind
	held   Kind
	reason string
}

func TestPlanRules(t *testing.T) {
	const R, S = containers.Running, containers.Stopped
	for _, tc := range []struct {
		desc string
		d    Desired
		c    containers.Container
		act  map[string]activity.Result
		want want
	}{
		// The decision table of docs/design.md.
		{"running, active, young: keep", desired(course("c")), ctr("c", "a", R, v2, time.Hour),
			map[string]activity.Result{"a": lastActive(10 * time.Minute)}, want{Keep, "", "active"}},
		{"running, busy: keep", desired(course("c")), ctr("c", "a", R, v2, time.Hour),
			map[string]activity.Result{"a": busy()}, want{Keep, "", "busy"}},
		{"running, idle, current: stop", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Stop, "", "idle for 3h0m0s"}},
		{"running, idle, stale: remove", desired(course("c")), ctr("c", "a", R, v1, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Remove, "", "stale"}},
		{"stopped, stale: remove", desired(course("c")), ctr("c", "a", S, v1, 0), nil, want{Remove, "", "stopped, image 111111111111 is stale (current 222222222222)"}},
		{"stopped, current: keep", desired(course("c")), ctr("c", "a", S, v2, 0), nil, want{Keep, "", "stopped, image current"}},
		// container: settings edited in courses.yaml make a container
		// stale as a new image does; one that did not record them is not.
		{"stopped, other settings: remove", desired(course("c")), madeWith("0123456789ab", ctr("c", "a", S, v2, 0)), nil,
			want{Remove, "", "stopped, container settings 0123456789ab are stale (courses.yaml has " + containers.SettingsKey(manifest.Container{}) + ")"}},
		{"stopped, same settings: keep", desired(course("c")), madeWith(containers.SettingsKey(manifest.Container{}), ctr("c", "a", S, v2, 0)), nil,
			want{Keep, "", "stopped, image current"}},
		{"running, idle, other settings: remove", desired(course("c")), madeWith("0123456789ab", ctr("c", "a", R, v2, 5*time.Hour)),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Remove, "", "container settings 0123456789ab are stale"}},
		{"running, active, other settings: report", desired(course("c")), madeWith("0123456789ab", ctr("c", "a", R, v2, time.Hour)),
			map[string]activity.Result{"a": lastActive(10 * time.Minute)}, want{ReportStale, "", "container settings 0123456789ab are stale"}},
		{"running, memory raised since: report", desired(course("c", func(co *manifest.Course) { co.Container.Memory = 4 << 30 })),
			madeWith(containers.SettingsKey(manifest.Container{}), ctr("c", "a", R, v2, time.Hour)),
			map[string]activity.Result{"a": lastActive(10 * time.Minute)}, want{ReportStale, "", "settings"}},
		{"running, active, stale: report", desired(course("c")), ctr("c", "a", R, v1, time.Hour),
			map[string]activity.Result{"a": busy()}, want{ReportStale, "", "removed once idle"}},
		// Kernel-less and unreachable servers.
		{"no kernel: idle since start", desired(course("c")), ctr("c", "a", R, v2, 3*time.Hour),
			map[string]activity.Result{"a": {State: activity.Answered, LastActivity: now.Add(-3 * time.Hour)}}, want{Stop, "", "no kernel"}},
		{"no kernel, recent start: keep", desired(course("c")), ctr("c", "a", R, v2, time.Minute),
			map[string]activity.Result{"a": {State: activity.Answered, LastActivity: now.Add(-time.Minute)}}, want{Keep, "", "active"}},
		{"starting server, stale: not idle", desired(course("c")), ctr("c", "a", R, v1, 30*time.Second),
			map[string]activity.Result{"a": {State: activity.Starting}}, want{ReportStale, "", "starting"}},
		{"unreachable twice, old: idle", desired(course("c")), ctr("c", "a", R, v1, 5*time.Hour),
			map[string]activity.Result{"a": {State: activity.Unreachable, LastActivity: now.Add(-5 * time.Hour)}}, want{Remove, "", "unreachable"}},
		{"unknown activity: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": {State: activity.Unknown, Err: "403 Forbidden"}}, want{Keep, "", "403"}},
		{"not probed: keep", desired(course("c")), ctr("c", "a", R, v1, 5*time.Hour), nil, want{ReportStale, "", "not probed"}},
		{"image not built: nothing is stale", Desired{Courses: map[string]CourseState{"c": {Course: course("c")}}}, ctr("c", "a", S, v1, 0), nil,
			want{Keep, "", "image current"}},
		// Lingering: the one exception to never retiring an active container.
		{"lingering, active, current: stop", desired(course("c")), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": busy()}, want{Stop, "", "beyond lingering (48h0m0s)"}},
		{"lingering, active, stale: remove", desired(course("c")), ctr("c", "a", R, v1, 49*time.Hour),
			map[string]activity.Result{"a": busy()}, want{Remove, "", "lingering"}},
		{"lingering and idle: idle wins", desired(course("c")), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Stop, "", "idle for"}},
		// Archived courses: removed once idle.
		{"archived, stopped: remove", desired(course("c", archived)), ctr("c", "a", S, v2, 0), nil, want{Remove, "", "archived"}},
		{"archived, idle: remove", desired(course("c", archived)), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Remove, "", "archived"}},
		{"archived, active: keep", desired(course("c", archived)), ctr("c", "a", R, v2, time.Hour),
			map[string]activity.Result{"a": busy()}, want{Keep, "", "removed once idle"}},
		{"archived, lingering: remove", desired(course("c", archived)), ctr("c", "a", R, v2, 50*time.Hour),
			map[string]activity.Result{"a": busy()}, want{Remove, "", "lingering"}},
		// Removed courses (confirmed: alone, the course is all of the site).
		{"removed, idle: remove", confirmed(desired(course("x"))), ctr("gone", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Remove, "", "no longer in courses.yaml"}},
		{"removed, active: keep", confirmed(desired(course("x"))), ctr("gone", "a", R, v2, time.Hour),
			map[string]activity.Result{"a": busy()}, want{Keep, "", "removed once idle"}},
		// What holds an old, otherwise idle server, in the words of why.
		{"open connection: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.Connections = 1 })}, want{Keep, "", "active (1 open connection), image current"}},
		{"kernel seen busy, silent since: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.SeenBusy = now.Add(-118 * time.Minute) })},
			want{Keep, "", "kernel seen busy at 08:02 UTC, silent since"}},
		{"CPU use: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) {
				r.CPU = &activity.CPUUse{Percent: 37, Over: 5 * time.Minute, Above: true}
			})}, want{Keep, "", "37% CPU over the last 5 min"}},
		{"CPU under the threshold: stop", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.CPU = &activity.CPUUse{Percent: 3, Over: 5 * time.Minute} })},
			want{Stop, "", "idle for 3h0m0s"}},
		{"CPU use, unreachable server: keep, stale reported", desired(course("c")), ctr("c", "a", R, v1, 5*time.Hour),
			map[string]activity.Result{"a": {State: activity.Unreachable, LastActivity: now.Add(-5 * time.Hour),
				CPU: &activity.CPUUse{Percent: 99, Over: 5 * time.Minute, Above: true}}}, want{ReportStale, "", "99% CPU"}},
		{"open connection, archived course: kept until idle", desired(course("c", archived)), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.Connections = 2 })}, want{Keep, "", "2 open connections"}},
		{"open connection, lingering: stop, saying so", desired(course("c")), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.Connections = 1 })},
			want{Stop, "", "beyond lingering (48h0m0s), although 1 open connection"}},
		{"open connection, lingering, frozen: held", desired(course("c", frozenMonday)), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.Connections = 1 })}, want{Hold, Stop, "freeze window"}},
		// The front door's traffic: a websocket open holds, a request
		// younger than idle keeps; lingering and freezes as for any hold.
		{"front door websocket open: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) {
				r.FrontDoor = &activity.Traffic{Last: now.Add(-12 * time.Second), Websockets: 1}
			})},
			want{Keep, "", "active (front door: last request 12 s ago, 1 websocket open), image current"}},
		{"front door request younger than idle: keep", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now.Add(-90 * time.Minute)} })},
			want{Keep, "", "active (front door: last request 1 h 30 min ago), image current"}},
		{"front door request younger than idle, stale: reported", desired(course("c")), ctr("c", "a", R, v1, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now.Add(-time.Minute)} })},
			want{ReportStale, "", "front door: last request 1 min ago"}},
		{"front door quiet for idle, none open: stop, saying so", desired(course("c")), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now.Add(-150 * time.Minute)} })},
			want{Stop, "", "idle for 2h30m0s (front door: last request 2 h 30 min ago) (idle: 2h0m0s)"}},
		{"front door websocket, lingering: stop, saying so", desired(course("c")), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now, Websockets: 2} })},
			want{Stop, "", "beyond lingering (48h0m0s), although front door: last request 0 s ago, 2 websockets open"}},
		{"front door websocket, lingering, frozen: held", desired(course("c", frozenMonday)), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now, Websockets: 1} })},
			want{Hold, Stop, "freeze window"}},
		{"front door websocket, archived course: kept until idle", desired(course("c", archived)), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": held(func(r *activity.Result) { r.FrontDoor = &activity.Traffic{Last: now, Websockets: 1} })},
			want{Keep, "", "removed once idle (active (front door"}},
		// Freeze windows: Monday 08:00 for 4h is open at 10:00.
		{"freeze: stopped stale is held", desired(course("c", frozenMonday)), ctr("c", "a", S, v1, 0), nil,
			want{Hold, Remove, `freeze window "0 8 * * 1" for 4h0m0s open since 2025-03-03T08:00:00Z`}},
		{"freeze: idle stale is stopped, not removed", desired(course("c", frozenMonday)), ctr("c", "a", R, v1, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Stop, "", "stopped, not removed"}},
		{"freeze: idle current is still stopped", desired(course("c", frozenMonday)), ctr("c", "a", R, v2, 5*time.Hour),
			map[string]activity.Result{"a": lastActive(3 * time.Hour)}, want{Stop, "", "idle"}},
		{"freeze: lingering is suspended", desired(course("c", frozenMonday)), ctr("c", "a", R, v2, 49*time.Hour),
			map[string]activity.Result{"a": busy()}, want{Hold, Stop, "freeze window"}},
		{"freeze window closed: normal", desired(course("c", frozenTuesday)), ctr("c", "a", S, v1, 0), nil, want{Remove, "", "stale"}},
	} {
		as := Plan(tc.d, []containers.Container{tc.c}, tc.act, now)
		if len(as) != 1 {
			t.Fatalf("%s: %d actions", tc.desc, len(as))
		}
		a := as[0]
		if a.Kind != tc.want.kind || a.Held != tc.want.held || !strings.Contains(a.Reason, tc.want.reason) {
			t.Errorf("%s:\n got %s (held %q): %s\nwant %s (held %q), reason containing %q", tc.desc, a.Kind, a.Held, a.Reason, tc.want.kind, tc.want.held, tc.want.reason)
		}
		if a.Course != tc.c.Course || a.Student != tc.c.Student || a.ID != tc.c.ID || a.Container != tc.c.Name || !a.At.Equal(now) || a.State != tc.c.State {
			t.Errorf("%s: action does not name its container: %+v", tc.desc, a)
		}
		if (a.Kind == Hold) != (a.Guard == GuardFreeze) {
			t.Errorf("%s: %s by guard %q, want holds here by the freeze guard only", tc.desc, a.Kind, a.Guard)
		}
	}
}

func kinds(as []Action) string {
	var s []string
	for _, a := range as {
		k := string(a.Kind)
		if a.Held != "" {
			k += "(" + string(a.Held) + ")"
		}
		s = append(s, a.Student+":"+k)
	}
	return strings.Join(s, " ")
}

func TestPlanRetireLimit(t *testing.T) {
	const R, S = containers.Running, containers.Stopped
	cs := []containers.Container{
		ctr("c", "a", R, v2, 9*time.Hour), // idle 8h
		ctr("c", "b", R, v2, 9*time.Hour), // idle 3h
		ctr("c", "c", S, v1, 0),
		ctr("c", "d", R, v2, time.Hour), // active
		ctr("c", "e", S, v1, 0),
	}
	act := map[string]activity.Result{"a": lastActive(8 * time.Hour), "b": lastActive(3 * time.Hour), "d": busy()}
	got := kinds(Plan(desired(course("c", limit(3))), cs, act, now))
	// Stopped ones first, then the longest idle; the rest wait.
	if want := "a:stop b:hold(stop) c:remove d:keep e:remove"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	as := Plan(desired(course("c", limit(3))), cs, act, now)
	if as[1].Guard != GuardRetireLimit || !strings.Contains(as[1].Reason, "retire-limit 3 reached for course c in this pass (4 due)") {
		t.Errorf("hold reason: %s", as[1].Reason)
	}
}

func TestPlanMassPrune(t *testing.T) {
	const S = containers.Stopped
	cs := []containers.Container{ctr("kept", "a", S, v2, 0), ctr("old1", "b", S, v2, 0), ctr("old2", "c", S, v2, 0), ctr("old2", "d", S, v2, 0)}
	d := desired(course("kept"))
	got := Plan(d, cs, nil, now)
	if k := kinds(got); k != "a:keep b:hold(remove) c:hold(remove) d:hold(remove)" {
		t.Errorf("held plan: %s", k)
	}
	if got[1].Guard != GuardMassPrune || !strings.Contains(got[1].Reason, "removes 2 of the site's 3 courses (old1, old2), confirm with --allow-mass-prune") {
		t.Errorf("reason: %s", got[1].Reason)
	}
	d.AllowMassPrune = true
	if k := kinds(Plan(d, cs, nil, now)); k != "a:keep b:remove c:remove d:remove" {
		t.Errorf("confirmed plan: %s", k)
	}
	// Half is not more than half.
	d = desired(course("kept"))
	if k := kinds(Plan(d, cs[:2], nil, now)); k != "a:keep b:remove" {
		t.Errorf("half plan: %s", k)
	}
}

// adopted makes an unlabelled nbhosting container.
func adopted(c containers.Container) containers.Container { c.Adopted, c.Port = true, 0; return c }

// had records courses of earlier revisions in d.
func had(d Desired, names ...string) Desired {
	d.Had = map[string]bool{}
	for _, n := range names {
		d.Had[n] = true
	}
	return d
}

// noAdopt is d under engine.adopt: false.
func noAdopt(d Desired) Desired {
	d.NoAdopt = true
	return d
}

// TestPlanSiteBoundary: an unlabelled container is the site's to retire
// only when its course is, or was, in the site's courses.yaml; one of a
// course the site never had is kept whatever the mass-prune guard says,
// and counts for nothing in it.
func TestPlanSiteBoundary(t *testing.T) {
	const S = containers.Stopped
	for _, tc := range []struct {
		desc string
		d    Desired
		cs   []containers.Container
		want string
	}{
		{"unlabelled, course never had: kept",
			confirmed(desired(course("a"))), []containers.Container{adopted(ctr("x", "y", S, v1, 0))},
			"y:keep"},
		{"unlabelled, course had and removed: removed",
			confirmed(had(desired(course("a")), "old")), []containers.Container{adopted(ctr("old", "b", S, v1, 0))},
			"b:remove"},
		{"unlabelled, course in courses.yaml, stale: removed",
			desired(course("a")), []containers.Container{adopted(ctr("a", "b", S, v1, 0))},
			"b:remove"},
		{"engine.adopt: false: unlabelled of a course in courses.yaml, stale: kept",
			noAdopt(desired(course("a"))), []containers.Container{adopted(ctr("a", "b", S, v1, 0)), ctr("a", "c", S, v1, 0)},
			"b:keep c:remove"},
		{"engine.adopt: false: unlabelled of a course had: kept",
			confirmed(noAdopt(had(desired(course("a")), "old"))), []containers.Container{adopted(ctr("old", "b", S, v1, 0))},
			"b:keep"},
		{"labelled for the site, course removed: removed",
			confirmed(desired(course("a"))), []containers.Container{ctr("gone", "b", S, v2, 0)},
			"b:remove"},
		// Foreign containers do not make a removal look small: one removed
		// course of two is not more than half, whatever else the engine
		// holds.
		{"foreign ones do not count",
			desired(course("a")), []containers.Container{ctr("gone", "b", S, v2, 0),
				adopted(ctr("x1", "p", S, v1, 0)), adopted(ctr("x2", "q", S, v1, 0)), adopted(ctr("x3", "r", S, v1, 0))},
			"b:remove p:keep q:keep r:keep"},
		// Nor large: the removal of every course is held however many
		// foreign containers would dilute it.
		{"every course removed, among foreign ones: held",
			had(desired(), "a", "b"), []containers.Container{ctr("a", "b", S, v2, 0), adopted(ctr("b", "c", S, v1, 0)),
				adopted(ctr("x1", "p", S, v1, 0)), adopted(ctr("x2", "q", S, v1, 0)), adopted(ctr("x3", "r", S, v1, 0))},
			"b:hold(remove) c:hold(remove) p:keep q:keep r:keep"},
		// Courses of courses.yaml without containers are courses of the
		// site all the same: removing 1 of 4 is no mass prune.
		{"courses without containers count",
			desired(course("a"), course("b"), course("c")), []containers.Container{ctr("gone", "b", S, v2, 0)},
			"b:remove"},
		{"more than half removed: held",
			desired(course("a")), []containers.Container{ctr("gone1", "b", S, v2, 0), ctr("gone2", "c", S, v2, 0)},
			"b:hold(remove) c:hold(remove)"},
	} {
		if got := kinds(Plan(tc.d, tc.cs, nil, now)); got != tc.want {
			t.Errorf("%s: plan %s, want %s", tc.desc, got, tc.want)
		}
	}
}

func TestPlanSortedAndPure(t *testing.T) {
	const S = containers.Stopped
	cs := []containers.Container{ctr("z", "b", S, v2, 0), ctr("a", "c", S, v2, 0), ctr("a", "a", S, v2, 0)}
	before := append([]containers.Container(nil), cs...)
	d := desired(course("a"), course("z"))
	p1, p2 := Plan(d, cs, nil, now), Plan(d, cs, nil, now)
	if kinds(p1) != "a:keep c:keep b:keep" || kinds(p1) != kinds(p2) {
		t.Errorf("plan order: %s", kinds(p1))
	}
	for i := range cs {
		if cs[i] != before[i] {
			t.Fatal("Plan changed its input")
		}
	}
}

func TestFrozen(t *testing.T) {
	for _, tc := range []struct {
		cron string
		dur  time.Duration
		at   time.Time
		want bool
	}{
		{"0 8 * * 1", 4 * time.Hour, now, true},                        // Mon 10:00 in Mon 08-12
		{"0 8 * * 1", 4 * time.Hour, now.Add(2 * time.Hour), false},    // 12:00: window just closed
		{"0 8 * * 1", 4 * time.Hour, now.Add(-2 * time.Hour), true},    // 08:00: opens
		{"0 8 * * 1", 4 * time.Hour, now.Add(-2*time.Hour - 1), false}, // just before
		{"0 22 * * 0", 14 * time.Hour, now, true},                      // Sun 22:00 for 14h spans midnight
		{"@daily", time.Hour, now, false},
	} {
		got, _ := frozen([]manifest.Freeze{{Cron: tc.cron, For: manifest.Duration(tc.dur)}}, tc.at)
		if got != tc.want {
			t.Errorf("frozen(%q for %s) at %s = %v, want %v", tc.cron, tc.dur, tc.at.Format(time.RFC3339Nano), got, tc.want)
		}
	}
}

// A plan parses each course's freeze windows once, however many
// containers the course has: at 1,000 containers the parses were the most
// of a plan's time. Not parallel: it swaps parseCron.
func TestPlanParsesFreezeOncePerCourse(t *testing.T) {
	parses := 0
	parseCron = func(spec string) (cron.Schedule, error) {
		parses++
		return manifest.CronParser.Parse(spec)
	}
	t.Cleanup(func() { parseCron = manifest.CronParser.Parse })
	d := desired(course("a", frozenMonday), course("b", frozenTuesday))
	d.Defaults.Freeze = []manifest.Freeze{{Cron: "0 8 * * 3", For: manifest.Duration(time.Hour)}}
	for _, n := range []int{3, 300} {
		var cs []containers.Container
		for i := range n {
			for _, co := range []string{"a", "b", "gone"} {
				cs = append(cs, ctr(co, fmt.Sprint(i), containers.Running, v1, 72*time.Hour))
			}
		}
		parses = 0
		p := Plan(d, cs, nil, now)
		if parses != 3 {
			t.Errorf("%d containers a course: %d cron parses, want 3 (one per course)", n, parses)
		}
		if p[0].Kind != Hold || p[0].Guard != GuardFreeze || p[n].Kind != Remove {
			t.Errorf("%d containers a course: %s:%s %s:%s", n, p[0].Kind, p[0].Reason, p[n].Kind, p[n].Reason)
		}
	}
}

func TestNewDesired(t *testing.T) {
	cfg, _, err := manifest.Parse("courses.yaml", []byte(`version: 1
courses:
  flot: {repo: https://example.org/flot.git}
  ds: {repo: https://example.org/ds.git, image: datascience, archived: true}
images:
  datascience: {dockerfile: images/ds.dockerfile}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDesired(cfg, map[string]string{"datascience": v2})
	if d.Courses["ds"].ImageID != v2 || d.Courses["flot"].ImageID != "" || !d.Courses["ds"].Course.Archived || d.Courses["flot"].Course.Name != "flot" {
		t.Errorf("desired = %+v", d)
	}
}

// engine.adopt in courses.yaml reaches the desired state: unset or true
// adopts the site's courses' unlabelled containers, false none.
func TestNewDesiredAdopt(t *testing.T) {
	for _, tc := range []struct {
		engine string
		want   bool
	}{{"", true}, {"engine: {adopt: true}\n", true}, {"engine: {adopt: false}\n", false}} {
		cfg, _, err := manifest.Parse("courses.yaml", []byte("version: 1\n"+tc.engine+"courses:\n  a: {repo: /srv/a}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := NewDesired(cfg, nil).Adopts("a"); got != tc.want {
			t.Errorf("%q: Adopts(a) = %v, want %v", tc.engine, got, tc.want)
		}
	}
}
