package containers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A mount whose source leads, through a symbolic link, where no student
// container may look (an engine socket's folder, the engine's data, the
// host's devices) is refused as the path itself would be; a link to an
// ordinary folder is not.
func TestCheckBindsResolvesSymlinks(t *testing.T) {
	root := t.TempDir()
	ordinary := t.TempDir()
	link := func(name, target string) string {
		p := filepath.Join(root, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, bind, want string // want "" for allowed
	}{
		{"link to /var/run", link("run", "/var/run") + ":/srv/run", "holds a container engine's socket"},
		{"link to /dev", link("dev", "/dev") + ":/home/jovyan/work", "reaches /dev"},
		{"path on through a link to /dev", filepath.Join(link("dev2", "/dev"), "missing", "deeper") + ":/w", "reaches /dev"},
		{"relative link to /proc", link("proc", "../../../../../../../../proc") + ":/w:ro", "reaches /proc"},
		{"link to a link to /dev", link("chain", filepath.Join(root, "dev")) + ":/w", "reaches /dev"},
		{"link to an ordinary folder", link("ok", ordinary) + ":/home/jovyan/work", ""},
		{"ordinary, not there yet", filepath.Join(root, "students", "alice", "flot") + ":/home/jovyan/work", ""},
	}
	if _, err := os.Stat("/var/lib/docker"); err == nil {
		tests = append(tests, struct{ name, bind, want string }{"link to /var/lib/docker", link("docker", "/var/lib/docker") + ":/data", "reaches /var/lib/docker"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBinds([]string{tt.bind})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// A student's work folder that is a symbolic link (to a folder standing in
// for /etc: never a real one, a failing test would give it away) is
// neither given to the student nor mounted: the spawn fails before the
// engine is asked for anything.
func TestSpawnRefusesLinkedWorkDir(t *testing.T) {
	root, etc := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "students", "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(etc, filepath.Join(root, "students", "alice", "flot")); err != nil {
		t.Fatal(err)
	}
	owner := statUID(t, etc)
	eng := &fakeEngine{ImagesFn: latestImage("sha256:v1"), InspectFn: notFound,
		CreateFn: func(context.Context, Spec) (string, error) { t.Error("created"); return "", errors.New("no") }}
	_, err := New(eng, nil, nil).Spawn(t.Context(), testCourse(), "alice", SpawnOptions{Root: root, UID: "1234"})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("err = %v, want a refusal of the link", err)
	}
	if got := statUID(t, etc); got != owner {
		t.Errorf("the link's target was given to uid %d", got)
	}
}
