package activity_test

import (
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
)

// apiTouch is a source written against activity.Signals alone, as a new
// one would be (here: an operator marking a student active through the
// API). It needs nothing else to reach the idle rule.
type apiTouch struct{ sig activity.Signals }

func (a apiTouch) markActive(course, student string) { a.sig.Seen(course, student) }

// TestOutsideSources: what any source says through Signals is what the
// passes read back as the server's traffic, merged over sources, and an
// open connection holds the server until it closes.
func TestOutsideSources(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		do     func(sig activity.Signals, clock *time.Time)
		seen   bool
		want   activity.Traffic
		isIdle bool // under a 10-minute idle time, an hour after t0
	}{
		{name: "nothing said", isIdle: true},
		{name: "the API marks a student active", seen: true, want: activity.Traffic{Last: t0.Add(time.Hour)},
			do: func(sig activity.Signals, clock *time.Time) {
				*clock = t0.Add(time.Hour)
				apiTouch{sig}.markActive("intro", "ann")
			}},
		{name: "a websocket open through the front door holds it", seen: true, want: activity.Traffic{Last: t0, Websockets: 1},
			do: func(sig activity.Signals, clock *time.Time) { sig.Opened("intro", "ann") }},
		{name: "closed an hour ago", seen: true, want: activity.Traffic{Last: t0}, isIdle: true,
			do: func(sig activity.Signals, clock *time.Time) { sig.Opened("intro", "ann")() }},
		{name: "two sources: the latest use wins", seen: true, want: activity.Traffic{Last: t0.Add(55 * time.Minute)},
			do: func(sig activity.Signals, clock *time.Time) {
				sig.Seen("intro", "ann") // the front door, at t0
				*clock = t0.Add(55 * time.Minute)
				apiTouch{sig}.markActive("intro", "ann")
			}},
		{name: "another student's signal", isIdle: true,
			do: func(sig activity.Signals, clock *time.Time) { sig.Seen("intro", "bob") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := t0
			o := activity.NewOutside(func() time.Time { return clock })
			if tc.do != nil {
				tc.do(o, &clock)
			}
			var src activity.TrafficSource = o // what the site's passes are given
			tr, seen := src.Traffic("intro", "ann")
			if seen != tc.seen || tr != tc.want {
				t.Fatalf("Traffic = %+v, %v; want %+v, %v", tr, seen, tc.want, tc.seen)
			}
			r := activity.Result{State: activity.Answered, LastActivity: t0.Add(-time.Hour)}
			if seen {
				r.FrontDoor = &tr
			}
			if got := r.Idle(t0.Add(time.Hour), 10*time.Minute); got != tc.isIdle {
				t.Errorf("Idle = %v, want %v (result %+v)", got, tc.isIdle, r)
			}
		})
	}
}
