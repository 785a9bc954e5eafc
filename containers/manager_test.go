package containers

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	labels := func(course, student string) map[string]string {
		return map[string]string{LabelManagedBy: ManagedBy, LabelCourse: course, LabelStudent: student, LabelPort: "30001", LabelUID: "1000"}
	}
	for _, tc := range []struct {
		desc string
		raw  Raw
		want Container
		ok   bool
	}{
		{"labelled running", Raw{ID: "1", Name: "c-x-s", ImageID: "sha256:a", EngineState: "running",
			Status: "Up 5 minutes", Created: now.Add(-5*time.Minute - 2*time.Second), Labels: labels("c", "s"), Ports: map[int]int{8888: 30001}},
			Container{ID: "1", Name: "c-x-s", Course: "c", Student: "s", ImageID: "sha256:a", State: Running,
				Created: now.Add(-5*time.Minute - 2*time.Second), StartedAt: now.Add(-5*time.Minute - 2*time.Second), Port: 30001, BasePath: "/30001/", UID: "1000"}, true},
		{"labelled stopped keeps label port", Raw{ID: "2", Name: "whatever", EngineState: "exited", Labels: labels("c", "t")},
			Container{ID: "2", Name: "whatever", Course: "c", Student: "t", State: Stopped, Port: 30001, BasePath: "/30001/", UID: "1000"}, true},
		{"adopted nbhosting name", Raw{ID: "3", Name: "flot-x-bob", EngineState: "created"},
			Container{ID: "3", Name: "flot-x-bob", Course: "flot", Student: "bob", State: Stopped, Adopted: true}, true},
		{"unrelated", Raw{ID: "4", Name: "redis", EngineState: "running"}, Container{}, false},
		{"nbhosting name but foreign labels", Raw{ID: "5", Name: "flot-x-bob", Labels: map[string]string{LabelManagedBy: "someone-else"}}, Container{}, false},
		{"managed but no course", Raw{ID: "6", Name: "x", Labels: map[string]string{LabelManagedBy: ManagedBy}}, Container{}, false},
		{"paused counts as running", Raw{ID: "7", Name: "c-x-p", EngineState: "paused", Status: "Up 2 hours (Paused)"},
			Container{ID: "7", Name: "c-x-p", Course: "c", Student: "p", State: Running, StartedAt: now.Add(-90 * time.Minute), Adopted: true}, true},
	} {
		got, ok := classify(tc.raw, now)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: classify = %+v, %v\nwant %+v, %v", tc.desc, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStartedFromStatus(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		status  string
		created time.Time
		want    time.Time
	}{
		{"Up 3 hours", now.Add(-3*time.Hour - 10*time.Minute), now.Add(-3*time.Hour - 10*time.Minute)}, // created in bracket: exact
		{"Up 3 hours", now.Add(-50 * time.Hour), now.Add(-150 * time.Minute)},                          // restarted later: latest possible
		{"Up 2 days", now.Add(-60 * time.Hour), now.Add(-60 * time.Hour)},
		{"Up 2 days", now.Add(-10 * 24 * time.Hour), now.Add(-48 * time.Hour)},
		{"Up About a minute", time.Time{}, now.Add(-time.Minute)},
		{"Up Less than a second", now, now},
		{"Up 45 seconds", now.Add(-45 * time.Second), now.Add(-45 * time.Second)},
		{"Exited (0) 3 minutes ago", now, time.Time{}},
		{"", now, time.Time{}},
	} {
		if got := startedFromStatus(tc.status, tc.created, now); !got.Equal(tc.want) {
			t.Errorf("startedFromStatus(%q, now-%s) = now-%s, want now-%s", tc.status, now.Sub(tc.created), now.Sub(got), now.Sub(tc.want))
		}
	}
}

func TestExpand(t *testing.T) {
	v := Vars{Root: "/srv/nbh", Course: "flot", Student: "alice", UID: "1001", Port: 30123}
	for in, want := range map[string]string{
		"{root}/students/{student}/{course}:/home/jovyan/work": "/srv/nbh/students/alice/flot:/home/jovyan/work",
		"--ServerApp.base_url=/{port}/":                        "--ServerApp.base_url=/30123/",
		"{uid}":                                                "1001",
		"plain":                                                "plain",
		"{unknown}":                                            "{unknown}",
	} {
		if got := v.Expand(in); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}
