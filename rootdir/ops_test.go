package rootdir

import (
	"path/filepath"
	"testing"
)

// The operators' files, pinned like the rest of the layout (TestLayout).
func TestOpsLayout(t *testing.T) {
	const root = "/srv/nbh"
	for _, tc := range []struct{ name, got, want string }{
		{"Holds", Holds(root), "/srv/nbh/state/holds.json"},
		{"Trash", Trash(root), "/srv/nbh/state/trash"},
		{"TrashEntry", TrashEntry(root, "intro", "alice", "20250303T100000Z"), "/srv/nbh/state/trash/intro/alice/20250303T100000Z"},
		{"Usage", Usage(root), "/srv/nbh/state/usage"},
	} {
		if want := filepath.FromSlash(tc.want); tc.got != want {
			t.Errorf("%s = %s, want %s", tc.name, tc.got, want)
		}
	}
}
