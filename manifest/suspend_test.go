package manifest

import (
	"strings"
	"testing"
)

// suspend: is a plain boolean of a course; with archived: it is allowed
// but warned about, since the hold keeps what archived would retire.
func TestParseSuspend(t *testing.T) {
	for _, tc := range []struct {
		name      string
		course    string
		suspended bool
		warning   string
	}{
		{"absent", "repo: /srv/a", false, ""},
		{"true", "repo: /srv/a\n    suspend: true", true, ""},
		{"false", "repo: /srv/a\n    suspend: false", false, ""},
		{"archived too", "repo: /srv/a\n    archived: true\n    suspend: true", true,
			"courses.yaml:6:5: warning: courses.a.suspend: the course is archived and suspended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\ncourses:\n  a:\n    " + tc.course + "\n"
			cfg, warns, err := Parse("courses.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Courses["a"].Suspend; got != tc.suspended {
				t.Errorf("Suspend = %v, want %v", got, tc.suspended)
			}
			var got []string
			for _, w := range warns {
				got = append(got, w.String())
			}
			switch {
			case tc.warning == "" && len(got) > 0:
				t.Errorf("warnings = %q, want none", got)
			case tc.warning != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.warning)):
				t.Errorf("warnings = %q, want one starting %q", got, tc.warning)
			}
		})
	}
}
