package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
)

// status says of each course with warm windows how many servers are warm,
// what the caps hold back, what waits for the next pass and when the next
// window opens; --json carries the same counts.
func TestStatusWarm(t *testing.T) {
	next := time.Date(2025, 3, 10, 7, 50, 0, 0, time.UTC)
	at := next.Local().Format("Mon 2006-01-02 15:04")
	for _, tc := range []struct {
		name     string
		co       api.CourseView
		want     string // the warm line, "" for none
		wantJSON string // the warm fields of the course in --json
	}{
		{name: "no warm window", co: api.CourseView{Name: "a"}},
		{name: "before the window", co: api.CourseView{Name: "a", NextWarm: next},
			want: "warm in a: 0 warm, next window " + at, wantJSON: `"next_warm":"2025-03-10T07:50:00Z"`},
		{name: "in the window", co: api.CourseView{Name: "a", Warm: 8, WarmHeld: 12, WarmPending: 20, NextWarm: next},
			want:     "warm in a: 8 warm, 12 held back by a cap (max or warm-max), 20 to start at the next pass, next window " + at,
			wantJSON: `"warm":8,"warm_held":12,"warm_pending":20,"next_warm":"2025-03-10T07:50:00Z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printStatus(&b, api.Status{Courses: []api.CourseView{tc.co}})
			got := ""
			for l := range strings.Lines(b.String()) {
				if strings.HasPrefix(l, "warm in ") {
					got = strings.TrimSuffix(l, "\n")
				}
			}
			if got != tc.want {
				t.Errorf("status:\n got %q\nwant %q", got, tc.want)
			}
			j, err := json.Marshal(tc.co)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantJSON == "" {
				if strings.Contains(string(j), "warm") {
					t.Errorf("--json of a course without warm windows: %s", j)
				}
			} else if !strings.Contains(string(j), tc.wantJSON) {
				t.Errorf("--json: %s, want %s in it", j, tc.wantJSON)
			}
		})
	}
}
