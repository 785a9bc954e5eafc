package containers

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckStudent(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"bob_2", true}, {"j.doe", true}, {"a-b", true}, {"0x", true},
		{"max", true}, {"x", true}, {"alex-x", true}, {"x-", false}, {"x-y", false}, {"b-x-c", false},
		{"", false}, {"Alice", false}, {"../etc", false}, {"a..b", false}, {".hidden", false},
		{"-rf", false}, {"a/b", false}, {"a b", false}, {string(make([]byte, 64)), false},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	} {
		err := CheckStudent(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckStudent(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadStudent) {
			t.Errorf("CheckStudent(%q) error %v is not ErrBadStudent", tc.name, err)
		}
	}
}

func TestSplitName(t *testing.T) {
	for _, tc := range []struct {
		name, course, student string
		ok                    bool
	}{
		{"flotpython-x-alice", "flotpython", "alice", true},
		{"/flotpython-x-alice", "flotpython", "alice", true},
		{"a-x-b-x-c", "", "", false}, // student b-x-c would be ambiguous
		{"a-x-x-y", "", "", false},   // a + x-y, or a-x + y: neither is adopted
		{"a-x-xy", "a", "xy", true},
		{"flotpython", "", "", false},
		{"-x-alice", "", "", false},
		{"flot-x-", "", "", false},
		{"Flot-x-alice", "", "", false},
		{"redis", "", "", false},
	} {
		c, s, ok := SplitName(tc.name)
		if c != tc.course || s != tc.student || ok != tc.ok {
			t.Errorf("SplitName(%q) = %q, %q, %v; want %q, %q, %v", tc.name, c, s, ok, tc.course, tc.student, tc.ok)
		}
	}
}

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

// TestNamesUnambiguous: every pair of a usable student and a course name
// validation accepts (no -x-, not ending in -x) gives a container name
// that SplitName reads back as that pair, so two students of two courses
// never share a name.
func TestNamesUnambiguous(t *testing.T) {
	parts := []string{"a", "x", "y", "ax", "xa", "a-", "a-b", "x-y", "a-x", "x-x", "a-x-b", "-x-", "x-a-x", "ex", "e.x", "a_x"}
	courseOK := func(c string) bool {
		return namePart.MatchString(c) && !strings.Contains(c, NameSep) && !strings.HasSuffix(c, "-x")
	}
	seen := map[string][2]string{}
	for _, c := range parts {
		for _, s := range parts {
			if !courseOK(c) || CheckStudent(s) != nil {
				continue
			}
			n := Name(c, s)
			if prev, dup := seen[n]; dup {
				t.Errorf("%s names both %v and %v", n, prev, [2]string{c, s})
			}
			seen[n] = [2]string{c, s}
			if gc, gs, ok := SplitName(n); !ok || gc != c || gs != s {
				t.Errorf("SplitName(%q) = %q, %q, %v; want %q, %q", n, gc, gs, ok, c, s)
			}
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d pairs tried", len(seen))
	}
}
