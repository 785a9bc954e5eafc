package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
)

// Each error is shown once, where it belongs.
func TestPlaceErrors(t *testing.T) {
	const (
		dns      = "fetch https://github.com/x/a.git: dial tcp: lookup github.com: no such host (retry in 9s)"
		build    = "image b: build: exit code 1"
		noDocker = "image c cannot be built: no Dockerfile at images.c.dockerfile"
		engine   = "container pass: engine unreachable"
	)
	for _, tc := range []struct {
		name       string
		st         api.Status
		wantCourse map[string][]string
		wantSite   []string
	}{
		{
			name: "a site error naming a course's repo goes on that course, once",
			st: api.Status{
				Courses: []api.CourseView{{Name: "a", Repo: "https://github.com/x/a.git", Error: dns}},
				Errors:  []string{dns, engine},
			},
			wantCourse: map[string][]string{"a": {dns}},
			wantSite:   []string{engine},
		},
		{
			name: "an image's error shows on its row, not on the courses using it nor site-wide",
			st: api.Status{
				Courses: []api.CourseView{{Name: "b", Image: "b", Error: build, ImageError: build}, {Name: "b2", Image: "b", ImageError: build}},
				Images:  []api.ImageView{{Name: "b", Error: build}},
				Errors:  []string{build},
			},
			wantCourse: map[string][]string{"b": nil, "b2": nil},
		},
		{
			name: "an image missing from the table: its error stays on the course",
			st: api.Status{
				Courses: []api.CourseView{{Name: "c", Image: "c", ImageError: noDocker}},
			},
			wantCourse: map[string][]string{"c": {noDocker}},
		},
		{
			name: "a longer version of an error already on the card is not repeated",
			st: api.Status{
				Courses: []api.CourseView{{Name: "a", Repo: "https://github.com/x/a.git", Error: "lookup github.com: no such host"}},
				Errors:  []string{dns},
			},
			wantCourse: map[string][]string{"a": {"lookup github.com: no such host"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cards, site := placeErrors(tc.st)
			for _, c := range cards {
				if !slices.Equal(c.Errors, tc.wantCourse[c.Name]) {
					t.Errorf("course %s errors = %q, want %q", c.Name, c.Errors, tc.wantCourse[c.Name])
				}
			}
			if !slices.Equal(site, tc.wantSite) {
				t.Errorf("site errors = %q, want %q", site, tc.wantSite)
			}
		})
	}
}

// Only a failed action is shown red; a spawn's "created" or a pass's
// "done" is news.
func TestDashboardActionResults(t *testing.T) {
	var buf strings.Builder
	st := api.Status{Actions: []api.ActionView{
		{Kind: "spawn", Course: "demo", Student: "alice", Result: "created"},
		{Kind: "stop", Course: "demo", Student: "bob", Result: "done"},
		{Kind: "remove", Course: "demo", Student: "carol", Result: "failed"},
	}}
	cards, site := placeErrors(st)
	if err := dashboardTemplate.Execute(&buf, page{Status: normalize(st), Courses: cards, SiteErrors: site}); err != nil {
		t.Fatal(err)
	}
	body := buf.String()
	for want, n := range map[string]int{
		`<span class="badge bad">failed</span>`: 1, `<span class="badge">created</span>`: 1,
		`<span class="badge">done</span>`: 1, `class="badge bad"`: 1,
	} {
		if got := strings.Count(body, want); got != n {
			t.Errorf("%d × %s, want %d", got, want, n)
		}
	}
}

// A course card says how many servers are warm, what the caps hold back,
// what waits for the next pass and when the next window opens; a course
// without warm windows says nothing of them.
func TestDashboardWarm(t *testing.T) {
	now := time.Date(2025, 3, 3, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		co   api.CourseView
		want string // the card's warm line, "" for none
	}{
		{name: "no warm window", co: api.CourseView{Name: "a"}},
		{name: "before the window", co: api.CourseView{Name: "a", NextWarm: now.Add(50 * time.Minute)},
			want: `<div class="warm">0 warm · next window <time datetime="2025-03-03T07:50:00Z" title="2025-03-03T07:50:00Z">in 50m</time></div>`},
		{name: "in the window, capped and paced", co: api.CourseView{Name: "a", Warm: 8, WarmHeld: 12, WarmPending: 20, NextWarm: now.Add(7 * 24 * time.Hour)},
			want: `<div class="warm">8 warm · <span class="badge warn warm-held" title="warm-ups the window's max or the site's warm-max hold back">12 held back by max</span> · 20 to start at the next pass · next window <time datetime="2025-03-10T07:00:00Z" title="2025-03-10T07:00:00Z">in 7d</time></div>`},
		{name: "warm servers of a window gone from the config", co: api.CourseView{Name: "a", Warm: 3},
			want: `<div class="warm">3 warm</div>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := api.Status{Courses: []api.CourseView{tc.co}}
			cards, site := placeErrors(st)
			var buf strings.Builder
			if err := dashboardTemplate.Execute(&buf, page{Status: normalize(st), Courses: cards, SiteErrors: site, Now: now}); err != nil {
				t.Fatal(err)
			}
			body := buf.String()
			got := ""
			if i := strings.Index(body, `<div class="warm">`); i >= 0 {
				got = body[i : i+strings.Index(body[i:], "</div>")+len("</div>")]
			}
			if got != tc.want {
				t.Errorf("warm line\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
