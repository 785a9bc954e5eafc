package site

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// copyTree copies files of testdata/nbhosting/from into dir/to, through edit.
func copyTree(t *testing.T, from, to string, names []string, edit func(string) string) {
	t.Helper()
	for _, n := range names {
		src := filepath.Join("testdata/nbhosting", from, n)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(src)
		dst := filepath.Join(to, n)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(edit(string(b))), st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNbhostingCourseOnStacksWithDefaults: sample-course's real .nbhosting/
// over nbhosting's real core image, itself on a base that behaves like
// docker-stacks (an entrypoint handing over to jovyan, USER 1000), with
// every container setting left to nbh-sync but the nbhosting preset. The
// student's server runs as the student's uid, finds the course's static
// top-levels, is counted idle by a restarted site and stopped after idle.
func TestNbhostingCourseOnStacksWithDefaults(t *testing.T) {
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	ctx := t.Context()
	base := jupytertest.Stacks(t, cli)
	ns := "nbhtest-" + fjtest.Suffix()
	scipy, course := ns+"/scipy-notebook", ns+"-sample"
	t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, scipy, course) })
	fjtest.CleanupContainers(t, cli, course+containers.NameSep)

	dir := t.TempDir()
	cfgDir, courseDir, root := filepath.Join(dir, "config"), filepath.Join(dir, "course"), filepath.Join(dir, "root")
	copyTree(t, "images", filepath.Join(cfgDir, "images"), []string{"nbhosting-scipy-notebook.Dockerfile",
		"nbhosting-image-root.sh", "nbhosting-image-jovyan.sh", "start-in-dir-as-uid.sh"},
		func(s string) string { return strings.ReplaceAll(s, "FROM "+jupytertest.Image2, "FROM "+base) })
	copyTree(t, "sample-course", courseDir, []string{".nbhosting/Dockerfile", ".nbhosting/nbhosting.yaml", "README.md", "jupytext-python.py"},
		func(s string) string { return strings.ReplaceAll(s, "FROM nbhosting/", "FROM "+ns+"/") })
	writeTestFile(t, filepath.Join(courseDir, "media/logo.txt"), "sample-course media\n")
	testenv.Git(t, courseDir, "init", "-q", "-b", "main")
	testenv.Git(t, courseDir, "add", "-A")
	testenv.Git(t, courseDir, "commit", "-qm", "course")
	writeTestFile(t, filepath.Join(cfgDir, "courses.yaml"), "version: 1\ndefaults:\n  idle: 1m\n  container: {preset: nbhosting}\n"+
		"images:\n  "+scipy+":\n    dockerfile: images/nbhosting-scipy-notebook.Dockerfile\n"+
		"courses:\n  "+course+":\n    repo: "+courseDir+"\n")
	testenv.Git(t, cfgDir, "init", "-q", "-b", "main")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "site")

	open := func() *Site {
		s, err := New(Options{Config: cfgDir, Root: root})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	rep, err := s.Sync(ctx, SyncOptions{})
	for _, r := range rep.Builds {
		t.Logf("build %s: built=%v in %s %s", r.Image, r.Built, r.Duration.Round(100*time.Millisecond), r.Err)
	}
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	sp, err := s.Spawn(ctx, course, "alice", "1234")
	if err != nil {
		t.Fatal(err)
	}
	// The Jupyter server (python3 -m jupyter_server), however the start
	// script got there (exec or a runuser child), runs as the student.
	if ps := testenv.ProcessUIDs(t, cli, sp.ID, "-m jupyter_server"); len(ps) != 1 || !strings.HasPrefix(ps[0], "1234 ") {
		t.Errorf("Jupyter server processes (uid command) %q, want one, of uid 1234", ps)
	}
	for cmd, want := range map[string]string{
		"cat /home/jovyan/static/media/logo.txt": "sample-course media",
		"cat /opt/sample-course/built":           "sample-course image",
		`echo "$NBAUTOEVAL_LOG"`:                 "/home/jovyan/work/.nbautoeval",
	} {
		if out := testenv.Exec(t, cli, sp.ID, "1234", "sh", "-c", cmd); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want %q", cmd, out, want)
		}
	}

	s = open() // a restarted daemon: the same ROOT, so the same tokens
	stopsWhenIdle(t, s, "alice")
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
