package gitwatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// A local repository another user owns is refused, as git refuses a
// directory that is not safe.directory — the folder itself, or the git
// directory its .git file points to — unless trusted by name.
func TestLocalRepoOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another uid needs root")
	}
	const other = 12345
	f := testenv.NewRepo(t)
	want := f.Commit(t, map[string]string{"secret.txt": "root only"}, "private")

	// A folder of another user whose .git file points at our repository.
	pointer := filepath.Join(t.TempDir(), "course")
	if err := os.Mkdir(pointer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pointer, ".git"), []byte("gitdir: "+f.Bare+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pointer, other, other); err != nil {
		t.Fatal(err)
	}
	// A folder of ours whose .git file points at another user's git dir.
	theirs := filepath.Join(t.TempDir(), "theirs.git")
	runGit(t, t.TempDir(), "clone", "-q", "--bare", f.Bare, theirs)
	if err := os.Chown(theirs, other, other); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(t.TempDir(), "ours")
	if err := os.Mkdir(ours, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ours, ".git"), []byte("gitdir: "+theirs+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, repo, owned string
		safe              []string
		ok                bool
	}{
		{"our own repository", f.Bare, "", nil, true},
		{"folder of another user", pointer, pointer, nil, false},
		{"git dir of another user", ours, theirs, nil, false},
		{"folder trusted by name", pointer, "", []string{pointer}, true},
		{"all trusted", ours, "", []string{"*"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMirrors(t.TempDir(), testLogger(t), Options{SafeDirectories: tc.safe})
			h, err := m.Update(t.Context(), tc.repo, "main", nil)
			if tc.ok {
				if err != nil || h.Commit.String() != want {
					t.Fatalf("got %+v, %v; want %s", h, err, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("a repository of uid %d was fetched", other)
			}
			for _, s := range []string{tc.owned, "uid 12345", "safe.directory"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
}
