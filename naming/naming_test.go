package naming

import (
	"errors"
	"strings"
	"testing"
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

func TestSplit(t *testing.T) {
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
		c, s, ok := Split(tc.name)
		if c != tc.course || s != tc.student || ok != tc.ok {
			t.Errorf("Split(%q) = %q, %q, %v; want %q, %q, %v", tc.name, c, s, ok, tc.course, tc.student, tc.ok)
		}
	}
}

// TestNamesUnambiguous: every pair of a usable student and a course name
// validation accepts (no -x-, not ending in -x) gives a container name
// that Split reads back as that pair, so two students of two courses
// never share a name.
func TestNamesUnambiguous(t *testing.T) {
	parts := []string{"a", "x", "y", "ax", "xa", "a-", "a-b", "x-y", "a-x", "x-x", "a-x-b", "-x-", "x-a-x", "ex", "e.x", "a_x"}
	courseOK := func(c string) bool {
		return namePart.MatchString(c) && !strings.Contains(c, Sep) && !strings.HasSuffix(c, "-x")
	}
	seen := map[string][2]string{}
	for _, c := range parts {
		for _, s := range parts {
			if !courseOK(c) || CheckStudent(s) != nil {
				continue
			}
			n := Container(c, s)
			if prev, dup := seen[n]; dup {
				t.Errorf("%s names both %v and %v", n, prev, [2]string{c, s})
			}
			seen[n] = [2]string{c, s}
			if gc, gs, ok := Split(n); !ok || gc != c || gs != s {
				t.Errorf("Split(%q) = %q, %q, %v; want %q, %q", n, gc, gs, ok, c, s)
			}
		}
	}
	if len(seen) < 20 {
		t.Fatalf("only %d pairs tried", len(seen))
	}
}

// TestPaths: the prefixes a server is reached under, and which recorded
// ones are trusted (a label anyone with the engine can set).
func TestPaths(t *testing.T) {
	if got := Prefix("flot", "alice"); got != "/u/flot/alice/" {
		t.Errorf("Prefix = %q", got)
	}
	if got := BasePath(30001); got != "/30001/" {
		t.Errorf("BasePath = %q", got)
	}
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{Prefix("flot", "alice"), true},
		{BasePath(30001), true},
		{"/65535/", true},
		{"/65536/", false},
		{"/0/", false},
		{"/-1/", false},
		{"/u/flot/alice", false},    // no trailing slash
		{"u/flot/alice/", false},    // no leading slash
		{"/u/flot/alice/x/", false}, // deeper than a student
		{"/u/flot/", false},
		{"/u/flot/x-y/", false},   // not a student name
		{"/u/Flot/alice/", false}, // not a course name
		{"/u/../etc/", false},
		{"/../etc/", false},
		{"/", false},
		{"", false},
	} {
		if got := ValidBasePath(tc.path); got != tc.ok {
			t.Errorf("ValidBasePath(%q) = %v, want %v", tc.path, got, tc.ok)
		}
	}
}
