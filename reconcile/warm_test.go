package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// monday is the day of the class: its warm window opens at 07:50 for 2h.
func monday(h, m int) time.Time { return time.Date(2025, 3, 3, h, m, 0, 0, time.UTC) }

func warmCourse(max int) CourseState {
	co := course("py", func(co *manifest.Course) {
		co.Idle = manifest.Duration(30 * time.Minute)
		co.Warm = []manifest.Warm{{Cron: "50 7 * * mon", For: manifest.Duration(2 * time.Hour), Students: "recent(30d)", Max: max}}
	})
	return CourseState{Course: co, ImageID: v2, Expected: []string{"ann", "bob", "cy"}}
}

func warmDesired(st CourseState, siteMax int) Desired {
	d := desired()
	d.Courses[st.Course.Name] = st
	d.Defaults.WarmMax = siteMax
	return d
}

// up is a running server of course py started at start.
func up(student, image string, start time.Time) containers.Container {
	return containers.Container{ID: student, Name: "py-x-" + student, Course: "py", Student: student, State: containers.Running, ImageID: image, Port: 30000, StartedAt: start}
}

// unvisited is what the probe reads of a server nobody opened.
func unvisited(start time.Time) activity.Result {
	return activity.Result{State: activity.Answered, LastActivity: start}
}

// visitedAt is a server whose student last worked at t.
func visitedAt(t time.Time) activity.Result {
	return activity.Result{State: activity.Answered, Kernels: 1, LastActivity: t}
}

func TestPlanWarm(t *testing.T) {
	open := monday(7, 50)
	for _, tc := range []struct {
		name    string
		d       Desired
		obs     []containers.Container
		act     map[string]activity.Result
		now     time.Time
		perPass int
		want    []string // kind:student[:guard]
	}{
		{name: "before the window, nothing", d: warmDesired(warmCourse(0), 0), now: monday(7, 49)},
		{name: "after the window, nothing", d: warmDesired(warmCourse(0), 0), now: monday(9, 50)},
		{name: "another day, nothing", d: warmDesired(warmCourse(0), 0), now: monday(7, 50).AddDate(0, 0, 1)},
		{name: "window opens: every expected student", d: warmDesired(warmCourse(0), 0), now: open,
			want: []string{"warm:ann", "warm:bob", "warm:cy"}},
		{name: "a running server needs none", d: warmDesired(warmCourse(0), 0), now: open.Add(time.Minute),
			obs: []containers.Container{up("bob", v2, open)}, act: map[string]activity.Result{"bob": unvisited(open)},
			want: []string{"warm:ann", "warm:cy"}},
		{name: "a stopped server is warmed (started)", d: warmDesired(warmCourse(0), 0), now: open,
			obs:  []containers.Container{{ID: "bob", Name: "py-x-bob", Course: "py", Student: "bob", State: containers.Stopped, ImageID: v2}},
			want: []string{"warm:ann", "warm:bob", "warm:cy"}},
		{name: "course max counts warm servers", d: warmDesired(warmCourse(2), 0), now: open.Add(time.Minute),
			obs: []containers.Container{up("bob", v2, open)}, act: map[string]activity.Result{"bob": unvisited(open)},
			want: []string{"warm:ann", "hold:cy:warm-max"}},
		{name: "a visited server is no longer warm", d: warmDesired(warmCourse(2), 0), now: open.Add(20 * time.Minute),
			obs: []containers.Container{up("bob", v2, open)}, act: map[string]activity.Result{"bob": visitedAt(open.Add(10 * time.Minute))},
			want: []string{"warm:ann", "warm:cy"}},
		{name: "site warm-max", d: warmDesired(warmCourse(0), 1), now: open,
			want: []string{"warm:ann", "hold:bob:warm-max", "hold:cy:warm-max"}},
		{name: "a few per pass", d: warmDesired(warmCourse(0), 0), now: open, perPass: 2,
			want: []string{"warm:ann", "warm:bob", "hold:cy:warm-pace"}},
		{name: "no image yet, nothing", d: func() Desired { st := warmCourse(0); st.ImageID = ""; return warmDesired(st, 0) }(), now: open},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanWarm(tc.d, tc.obs, tc.act, nil, tc.now, tc.perPass)
			var s []string
			for _, a := range got {
				k := string(a.Kind) + ":" + a.Student
				if a.Guard != "" {
					k += ":" + string(a.Guard)
				}
				s = append(s, k)
				if a.Warm != (a.Kind == WarmUp) {
					t.Errorf("%s: %s with Warm %v", a.Student, a.Kind, a.Warm)
				}
				if a.Kind == Hold && a.Held != WarmUp {
					t.Errorf("%s: held %s, want %s", a.Student, a.Held, WarmUp)
				}
			}
			if strings.Join(s, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v\nwant %v", s, tc.want)
			}
		})
	}
}

// find returns the action of student's container (or warm-up), by kind
// when several.
func find(t *testing.T, as []Action, student string, kind Kind) Action {
	t.Helper()
	for _, a := range as {
		if a.Student == student && (kind == "" || a.Kind == kind) {
			return a
		}
	}
	t.Fatalf("no %s action for %s in %v", kind, student, as)
	return Action{}
}

// TestWarmWindowStory follows a class through its window with a test
// clock: the window opens and the expected students are warmed; the idle
// rule spares the unvisited ones; a commit mid-window replaces only the
// servers nobody opened; at the end of the window the unvisited ones are
// stopped like any other idle server (their idle time runs from their
// start), or removed when stale.
func TestWarmWindowStory(t *testing.T) {
	open := monday(7, 50)
	d := warmDesired(warmCourse(0), 0)

	// 07:50: the window opens, nothing runs: every expected student is warmed.
	as := Plan(d, nil, nil, open)
	if len(as) != 3 || as[0].Kind != WarmUp || as[0].Reason != `expected student, warm window "50 7 * * mon" until 09:50` {
		t.Fatalf("at the opening: %v", as)
	}

	// 08:40: ann opened hers at 08:00 and works; bob and cy never came,
	// idle 50m against an idle time of 30m; dan (not expected) is idle.
	obs := []containers.Container{up("ann", v2, open), up("bob", v2, open), up("cy", v2, open), up("dan", v2, monday(7, 0))}
	act := map[string]activity.Result{"ann": visitedAt(monday(8, 35)), "bob": unvisited(open), "cy": unvisited(open), "dan": visitedAt(monday(7, 10))}
	as = Plan(d, obs, act, monday(8, 40))
	if a := find(t, as, "bob", ""); a.Kind != Hold || a.Held != Stop || a.Guard != GuardWarm || !a.Warm || !strings.Contains(a.Reason, "warm window \"50 7 * * mon\" until 09:50") {
		t.Errorf("bob in the window: %+v", a)
	}
	if a := find(t, as, "ann", ""); a.Kind != Keep {
		t.Errorf("ann at work: %+v", a)
	}
	if a := find(t, as, "dan", ""); a.Kind != Stop {
		t.Errorf("dan, cold and idle: %+v", a)
	}
	if n := len(as); n != 4 {
		t.Errorf("%d actions, want 4 (no warm-up: every expected server runs): %v", n, as)
	}

	// 09:00: a commit made v3 current. ann's server (visited, active) is
	// only reported stale; bob's and cy's (never opened) are replaced:
	// removed, then warmed again on the new image.
	const v3 = "sha256:3333333333333333"
	st := d.Courses["py"]
	st.ImageID = v3
	d.Courses["py"] = st
	as = Plan(d, obs, act, monday(9, 0))
	if a := find(t, as, "ann", ""); a.Kind != ReportStale {
		t.Errorf("ann, visited, after the commit: %+v", a)
	}
	for _, s := range []string{"bob", "cy"} {
		if a := find(t, as, s, Remove); !strings.Contains(a.Reason, "never visited") {
			t.Errorf("%s, unvisited, after the commit: %+v", s, a)
		}
		if a := find(t, as, s, WarmUp); a.ImageID != v3 {
			t.Errorf("%s warmed again on %s, want %s", s, a.ImageID, v3)
		}
	}

	// 09:50: the window is over; bob and cy (warm again since 09:01,
	// never visited) are stopped like any idle server.
	obs = []containers.Container{up("ann", v2, open), up("bob", v3, monday(9, 1)), up("cy", v3, monday(9, 1))}
	act = map[string]activity.Result{"ann": visitedAt(monday(9, 45)), "bob": unvisited(monday(9, 1)), "cy": unvisited(monday(9, 1))}
	as = Plan(d, obs, act, monday(9, 50))
	for _, s := range []string{"bob", "cy"} {
		if a := find(t, as, s, ""); a.Kind != Stop {
			t.Errorf("%s at the end of the window: %+v", s, a)
		}
	}
	if a := find(t, as, "ann", ""); a.Kind != ReportStale {
		t.Errorf("ann at the end: %+v", a)
	}
	if len(as) != 3 {
		t.Errorf("warm-ups after the window: %v", as)
	}

	// The same pass, had a commit made v4 current meanwhile: the unvisited
	// servers, idle since their start and stale, are removed like any
	// other, and not warmed again (the window is over).
	st.ImageID = "sha256:4444444444444444"
	d.Courses["py"] = st
	as = Plan(d, obs, act, monday(9, 50))
	for _, s := range []string{"bob", "cy"} {
		if a := find(t, as, s, ""); a.Kind != Remove || a.Warm || !strings.Contains(a.Reason, "idle") {
			t.Errorf("%s, stale at the end of the window: %+v", s, a)
		}
	}
	if len(as) != 3 {
		t.Errorf("warm-ups after the window: %v", as)
	}
}

// A freeze window keeps the servers of students at work; a warm server
// nobody opened has nobody at work on it, so a commit still replaces it.
func TestWarmReplacedInFreeze(t *testing.T) {
	st := warmCourse(0)
	st.Course.Freeze = []manifest.Freeze{{Cron: "0 7 * * mon", For: manifest.Duration(4 * time.Hour)}}
	d := warmDesired(st, 0)
	open := monday(7, 50)
	obs := []containers.Container{up("ann", v1, open), up("bob", v1, open)}
	act := map[string]activity.Result{"ann": visitedAt(monday(8, 0)), "bob": unvisited(open)}
	as := Plan(d, obs, act, monday(8, 40))
	if a := find(t, as, "bob", Remove); !strings.Contains(a.Reason, "never visited") {
		t.Errorf("bob: %+v", a)
	}
	if a := find(t, as, "ann", ""); a.Kind != Stop || !strings.Contains(a.Reason, "not removed") {
		t.Errorf("ann, idle 40m in a freeze: %+v", a)
	}
}
