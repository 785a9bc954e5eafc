package containers

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nbhosting/nbh-sync/naming"
)

// siteRaws are containers of several owners on one engine.
func siteRaws() []Raw {
	managed := func(name, site string) Raw {
		course, student, _ := naming.Split(name)
		l := map[string]string{LabelCourse: course, LabelStudent: student, LabelManagedBy: ManagedBy}
		if site != "" {
			l[LabelSite] = site
		}
		return Raw{ID: name, Name: name, Labels: l, EngineState: "exited"}
	}
	return []Raw{
		managed("a-x-mine", "/srv/site-a"),
		managed("gone-x-mine", "/srv/site-a"), // of a course site a no longer has
		managed("a-x-theirs", "/srv/site-b"),
		managed("a-x-nosite", ""), // another tool's, or made before sites were recorded
		{ID: "n", Name: "a-x-nbhosting", EngineState: "exited"},
		{ID: "u", Name: "x-x-y", EngineState: "exited"}, // unlabelled, course x unknown to both
		{ID: "s", Name: "a-x-siteonly", EngineState: "exited", Labels: map[string]string{LabelSite: "/srv/site-a"}},
		{ID: "r", Name: "redis", EngineState: "running"},
	}
}

// TestListSiteBoundary: a site lists its own labelled containers, and
// unlabelled nbhosting ones only of the courses it adopts; never another
// site's, never a managed-by container without a site label, never an
// unlabelled one of a course it does not have.
func TestListSiteBoundary(t *testing.T) {
	eng := &fakeEngine{ListFn: func(context.Context) ([]Raw, error) { return siteRaws(), nil }}
	courseA := func(c string) bool { return c == "a" }
	tests := []struct {
		desc  string
		site  string
		adopt func(string) bool
		want  []string
	}{
		{"site a, course a", "/srv/site-a", courseA, []string{"a-x-mine", "a-x-nbhosting", "gone-x-mine"}},
		{"site a, adopts nothing", "/srv/site-a", nil, []string{"a-x-mine", "gone-x-mine"}},
		{"site a, adopts x", "/srv/site-a", func(c string) bool { return c == "x" }, []string{"a-x-mine", "gone-x-mine", "x-x-y"}},
		{"site b, course a", "/srv/site-b", courseA, []string{"a-x-nbhosting", "a-x-theirs"}},
		{"site c has nothing labelled", "/srv/site-c", courseA, []string{"a-x-nbhosting"}},
		// A Manager without a name (tests) owns what has no site label.
		{"no name", "", nil, []string{"a-x-nosite"}},
	}
	for _, tt := range tests {
		m := New(eng, nil, nil)
		m.Site = tt.site
		cs, err := m.List(t.Context(), tt.adopt)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: List = %v, want %v", tt.desc, got, tt.want)
		}
	}
}

// TestGetSiteBoundary: a spawn (through Get) never takes over another
// site's container, nor a managed-by one without a site label.
func TestGetSiteBoundary(t *testing.T) {
	raws := map[string]Raw{}
	for _, r := range siteRaws() {
		raws[r.Name] = r
	}
	eng := &fakeEngine{InspectFn: func(_ context.Context, name string) (Raw, error) {
		if r, ok := raws[name]; ok {
			return r, nil
		}
		return Raw{}, ErrNotFound
	}}
	m := New(eng, nil, nil)
	m.Site = "/srv/site-a"
	for _, tt := range []struct {
		course, student string
		want            error
	}{
		{"a", "mine", nil},
		{"a", "nbhosting", nil}, // adopted: the caller names a course of its own
		{"a", "theirs", ErrNotManaged},
		{"a", "nosite", ErrNotManaged},
		{"a", "siteonly", ErrNotManaged},
		{"a", "nobody", ErrNotFound},
	} {
		_, err := m.Get(t.Context(), tt.course, tt.student)
		if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
			t.Errorf("Get(%s, %s) = %v, want %v", tt.course, tt.student, err, tt.want)
		}
	}
}
