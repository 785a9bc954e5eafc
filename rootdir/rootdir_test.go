package rootdir

import (
	"path/filepath"
	"testing"
)

// Every path under ROOT, spelled out: a site upgraded in place finds its
// state where the previous version left it only if no name changes, so a
// change here must be deliberate (and come with a migration).
func TestLayout(t *testing.T) {
	const root = "/srv/nbh"
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"Mirrors", Mirrors(root), "/srv/nbh/mirrors"},
		{"Course", Course(root, "intro"), "/srv/nbh/courses/intro"},
		{"Student", Student(root, "alice"), "/srv/nbh/students/alice"},
		{"StudentCourse", StudentCourse(root, "alice", "intro"), "/srv/nbh/students/alice/intro"},
		{"State", State(root), "/srv/nbh/state"},
		{"APISocket", APISocket(root), "/srv/nbh/state/api.sock"},
		{"History", History(root), "/srv/nbh/state/history.db"},
		{"TokenKey", TokenKey(root), "/srv/nbh/state/jupyter-token.key"},
		{"ProxySessionKey", ProxySessionKey(root), "/srv/nbh/state/proxy-session.key"},
		{"ActivityMemory", ActivityMemory(root), "/srv/nbh/state/activity.json"},
		{"LastPass", LastPass(root), "/srv/nbh/state/last-pass.json"},
		{"KnownCourses", KnownCourses(root), "/srv/nbh/state/known-courses.json"},
		{"BuildFailures", BuildFailures(root), "/srv/nbh/state/build-failures.json"},
		{"ConfigState", ConfigState(root), "/srv/nbh/state/config.json"},
		{"PullStatus", PullStatus(root), "/srv/nbh/state/courses.json"},
		{"Workspaces", Workspaces(root, "intro"), "/srv/nbh/state/workspaces/intro"},
		{"WorkspaceState", WorkspaceState(root, "intro", "alice"), "/srv/nbh/state/workspaces/intro/students/alice"},
		{"Shares", Shares(root), "/srv/nbh/state/shares"},
		{"UIDs", UIDs(root), "/srv/nbh/state/uids.json"},
		{"UIDsLock", UIDsLock(root), "/srv/nbh/state/uids.lock"},
	} {
		if want := filepath.FromSlash(tc.want); tc.got != want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, want)
		}
	}
}
