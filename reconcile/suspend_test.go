package reconcile

import (
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

func suspendedInYAML(co *manifest.Course) { co.Suspend = true }

// A course on hold retires nothing: every stop or remove becomes a hold by
// GuardSuspended, whether the hold comes from courses.yaml or from
// nbh-sync suspend; other courses are untouched, and keeps stay keeps.
func TestPlanSuspended(t *testing.T) {
	const R, S = containers.Running, containers.Stopped
	cs := []containers.Container{
		ctr("c", "a", R, v2, 9*time.Hour), // idle: stop
		ctr("c", "b", S, v1, 0),           // stale, stopped: remove
		ctr("c", "d", R, v2, time.Hour),   // busy: keep
		ctr("o", "e", R, v2, 9*time.Hour), // another course, idle: stop
	}
	act := map[string]activity.Result{"a": lastActive(8 * time.Hour), "d": busy(), "e": lastActive(8 * time.Hour)}
	for _, tc := range []struct {
		name   string
		d      Desired
		want   string
		reason string
	}{
		{"not suspended", desired(course("c"), course("o")), "a:stop b:remove d:keep e:stop", ""},
		{"in courses.yaml", desired(course("c", suspendedInYAML), course("o")), "a:hold(stop) b:hold(remove) d:keep e:stop",
			"course c is suspended in courses.yaml"},
		{"at run time", func() Desired {
			d := desired(course("c"), course("o"))
			d.Suspended = map[string]string{"c": "course c suspended by ops at 2025-03-03T09:00:00Z: term break"}
			return d
		}(), "a:hold(stop) b:hold(remove) d:keep e:stop", "suspended by ops at 2025-03-03T09:00:00Z: term break"},
		{"a held course takes none of the retire limit", func() Desired {
			d := desired(course("c", suspendedInYAML, limit(1)), course("o", limit(1)))
			return d
		}(), "a:hold(stop) b:hold(remove) d:keep e:stop", "suspended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := Plan(tc.d, cs, act, now)
			if got := kinds(as); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			for _, a := range as {
				if a.Kind != Hold {
					continue
				}
				if a.Guard != GuardSuspended || !strings.Contains(a.Reason, tc.reason) {
					t.Errorf("%s: guard %q, reason %q; want %q with %q", a.Student, a.Guard, a.Reason, GuardSuspended, tc.reason)
				}
			}
		})
	}
}

// Active is the plan's own rule, seen from one container.
func TestActive(t *testing.T) {
	const R, S = containers.Running, containers.Stopped
	co := course("c")
	for _, tc := range []struct {
		name   string
		c      containers.Container
		r      activity.Result
		probed bool
		active bool
		why    string
	}{
		{"stopped", ctr("c", "a", S, v2, 0), activity.Result{}, false, false, "stopped"},
		{"busy kernel", ctr("c", "a", R, v2, time.Hour), busy(), true, true, "a kernel is busy"},
		{"recent activity", ctr("c", "a", R, v2, time.Hour), lastActive(10 * time.Minute), true, true, "last activity 10m0s ago"},
		{"idle", ctr("c", "a", R, v2, 9*time.Hour), lastActive(3 * time.Hour), true, false, "idle for 3h0m0s"},
		{"open connection", ctr("c", "a", R, v2, 9*time.Hour), held(func(r *activity.Result) { r.Connections = 1 }), true, true, "1 open connection"},
		{"not probed", ctr("c", "a", R, v2, time.Hour), activity.Result{}, false, true, "activity not probed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			active, why := Active(co, tc.c, tc.r, tc.probed, now)
			if active != tc.active || !strings.Contains(why, tc.why) {
				t.Errorf("Active = %v, %q; want %v, containing %q", active, why, tc.active, tc.why)
			}
		})
	}
}
