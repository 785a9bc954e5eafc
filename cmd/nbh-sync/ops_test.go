package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// The operators' commands working directly on a site (no daemon): a course
// put on hold and resumed, the hold of courses.yaml kept, status saying
// so; the refusals that need no engine.
func TestOpsCommandsDirect(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, filepath.Join(cfg, "courses.yaml"), "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n  exam:\n    repo: .\n    path: exam\n    suspend: true\n")
	write(t, filepath.Join(cfg, "intro/lesson.ipynb"), "{}\n")
	write(t, filepath.Join(cfg, "exam/lesson.ipynb"), "{}\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "site")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"suspend", "intro", "--reason", "audit"}, 0, "intro: on hold (runtime, by "},
		{[]string{"suspend", "nope"}, 1, "unknown course"},
		{[]string{"resume", "exam"}, 1, "suspended in courses.yaml: set suspend: false"},
		{[]string{"resume", "intro", "--json"}, 0, `"course": "exam"`},
		{[]string{"resume", "intro"}, 1, "not suspended"},
		{[]string{"remove", "intro", "ann", "--workspace"}, 1, "confirm with --yes"},
		{[]string{"stop", "intro", "ann", "--workspace"}, 1, "unknown flag: --workspace"},
		{[]string{"stop", "intro", "../x"}, 1, "invalid student name"},
	} {
		code, out, errOut := runCLI(t, append([]string{"--api", "none", "--config", cfg, "--root", root, "--log-level", "warn"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}
