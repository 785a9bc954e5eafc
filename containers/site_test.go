package containers

import (
	"context"
	"slices"
	"testing"
)

// TestListLeavesOtherSitesAlone: a Manager of one site lists its own
// containers and unlabelled nbhosting ones, never another site's.
func TestListLeavesOtherSitesAlone(t *testing.T) {
	managed := func(name, site string) Raw {
		course, student, _ := SplitName(name)
		l := map[string]string{LabelCourse: course, LabelStudent: student, LabelManagedBy: ManagedBy}
		if site != "" {
			l[LabelSite] = site
		}
		return Raw{ID: name, Name: name, Labels: l, EngineState: "exited"}
	}
	eng := &fakeEngine{ListFn: func(context.Context) ([]Raw, error) {
		return []Raw{
			managed("a-x-mine", "/srv/site-a"),
			managed("a-x-theirs", "/srv/site-b"),
			managed("a-x-older", ""), // made before sites were recorded
			{ID: "n", Name: "a-x-nbhosting", EngineState: "exited"},
		}, nil
	}}
	tests := []struct {
		site string
		want []string
	}{
		{"/srv/site-a", []string{"a-x-mine", "a-x-nbhosting", "a-x-older"}},
		{"/srv/site-b", []string{"a-x-nbhosting", "a-x-older", "a-x-theirs"}},
		{"", []string{"a-x-mine", "a-x-nbhosting", "a-x-older", "a-x-theirs"}},
	}
	for _, tt := range tests {
		m := New(eng, nil, nil)
		m.Site = tt.site
		cs, err := m.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("site %q: List = %v, want %v", tt.site, got, tt.want)
		}
	}
}
