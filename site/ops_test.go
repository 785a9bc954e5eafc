package site_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/site"
)

// opsEngine holds containers of the site whose image is stale (so that a
// pass would remove the stopped ones), and records stops and removals.
type opsEngine struct {
	stopGate
	mu      sync.Mutex
	stopped []string
}

func (e *opsEngine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = append(e.stopped, id)
	return nil
}

func (e *opsEngine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopGate.removed[id] = true
	return nil
}

// opsSite is a site of two courses in its config repo: intro, and exam
// (suspend: true in courses.yaml), each with one stale stopped container
// per student given, and a running one for "runner" in intro.
func opsSite(t *testing.T, students ...string) (*site.Site, *opsEngine, string) {
	t.Helper()
	cfg := commitConfig(t, t.TempDir(), map[string]string{
		"courses.yaml": "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n  exam:\n    repo: .\n    path: exam\n    suspend: true\n",
		"intro/docker-image/nbhosting.Dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
		"exam/docker-image/nbhosting.Dockerfile":  "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	})
	root := t.TempDir()
	e := &opsEngine{stopGate: stopGate{removed: map[string]bool{}}}
	raw := func(course, student, state string) containers.Raw {
		return containers.Raw{ID: "id-" + course + "-" + student, Name: naming.Container(course, student), ImageID: "sha256:old", EngineState: state,
			Created: time.Now().Add(-time.Hour), StartedAt: time.Now().Add(-time.Hour),
			Labels: map[string]string{containers.LabelManagedBy: containers.ManagedBy,
				containers.LabelCourse: course, containers.LabelStudent: student, containers.LabelSite: site.SiteName(root)}}
	}
	for _, st := range students {
		e.raws = append(e.raws, raw("intro", st, "exited"), raw("exam", st, "exited"))
	}
	// Running, but with no published port: its activity cannot be read,
	// so it counts as active.
	e.raws = append(e.raws, raw("intro", "runner", "running"))
	s, err := site.New(site.Options{Config: cfg, Root: root, ContainerEngine: e, ImageEngine: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	return s, e, root
}

// guards maps each container of a plan to its kind and, for holds, guard.
func guards(as []reconcile.Action) map[string]string {
	out := map[string]string{}
	for _, a := range as {
		k := string(a.Kind)
		if a.Guard != "" {
			k += "/" + string(a.Guard)
		}
		out[a.Container] = k
	}
	return out
}

// A course on hold — in courses.yaml or at run time — is not pulled, has
// no image built and retires nothing, and status and plan say so; resume
// lifts a runtime hold (not one of courses.yaml) and the next pass retires
// what was held.
func TestCourseHolds(t *testing.T) {
	ctx := t.Context()
	s, e, root := opsSite(t, "ann")

	if _, err := s.Suspend(ctx, "nope", "ops", ""); !errors.Is(err, manifest.ErrUnknownCourse) {
		t.Errorf("suspend of an unknown course: %v, want ErrUnknownCourse", err)
	}
	holds, err := s.Suspend(ctx, "intro", "ops", "term break")
	if err != nil {
		t.Fatal(err)
	}
	if len(holds) != 2 || holds[0].Course != "exam" || holds[0].Source != "courses.yaml" ||
		holds[1].Course != "intro" || holds[1].Source != "runtime" || holds[1].By != "ops" || holds[1].Reason != "term break" {
		t.Errorf("holds = %+v", holds)
	}
	if _, err := s.Suspend(ctx, "intro", "someone else", "again"); err != nil {
		t.Errorf("a second suspend: %v, want none (idempotent)", err)
	}
	if _, err := os.Stat(rootdir.Holds(root)); err != nil {
		t.Errorf("the hold is not kept under ROOT/state: %v", err)
	}

	// No pull: no work tree checked out for either course (intro's was,
	// by the pull that gave the site its config: it is not made again).
	if err := os.RemoveAll(rootdir.Course(root, "intro")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"intro", "exam"} {
		if _, err := os.Stat(rootdir.Course(root, c)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("course %s on hold was checked out (%v)", c, err)
		}
	}
	// No build.
	res, err := s.BuildAll(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Built || r.Action != "none" {
			t.Errorf("image %s of a course on hold: %+v, want no build", r.Image, r)
		}
	}
	// No retirement, and the plan says why.
	rep, err := s.Pass(ctx, site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"intro-x-ann": "hold/suspended", "exam-x-ann": "hold/suspended", "intro-x-runner": "report-stale"}
	if got := guards(rep.Actions); !equalMaps(got, want) {
		t.Errorf("pass actions = %v, want %v", got, want)
	}
	if len(e.removed) > 0 {
		t.Errorf("removed %v while on hold", e.removed)
	}
	plan, _ := s.Plan(ctx, site.PassOptions{})
	for _, p := range plan.Pulls {
		if p.Guard != string(reconcile.GuardSuspended) {
			t.Errorf("plan: pull of %s not marked held: %+v", p.Course, p)
		}
	}
	for _, b := range plan.Builds {
		if b.Guard != string(reconcile.GuardSuspended) || !strings.Contains(b.Reason, "suspended") {
			t.Errorf("plan: build of %s not marked held: %+v", b.Image, b)
		}
	}
	if plan.Changes != 0 {
		t.Errorf("plan counts %d changes, want 0: everything is held", plan.Changes)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Courses {
		if !strings.Contains(c.Suspended, "suspended") {
			t.Errorf("status of %s: suspended %q", c.Name, c.Suspended)
		}
	}

	// Resume: the runtime hold goes, the one in courses.yaml stays.
	if _, err := s.Resume(ctx, "exam", "ops"); !errors.Is(err, site.ErrHeldInConfig) {
		t.Errorf("resume of a course suspended in courses.yaml: %v, want ErrHeldInConfig", err)
	}
	if holds, err = s.Resume(ctx, "intro", "ops"); err != nil || len(holds) != 1 || holds[0].Course != "exam" {
		t.Fatalf("resume intro: %+v, %v", holds, err)
	}
	if _, err := s.Resume(ctx, "intro", "ops"); !errors.Is(err, site.ErrNotHeld) {
		t.Errorf("a second resume: %v, want ErrNotHeld", err)
	}
	rep, err = s.Pass(ctx, site.PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want["intro-x-ann"] = "remove"
	if got := guards(rep.Actions); !equalMaps(got, want) {
		t.Errorf("pass after resume = %v, want %v", got, want)
	}
	if !e.removed["id-intro-ann"] || e.removed["id-exam-ann"] {
		t.Errorf("removed after resume: %v, want intro-x-ann only", e.removed)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// An operator's action on one student: refused while the server counts as
// active (here: running, its activity unreadable) unless forced; a stopped
// server is acted on at once; remove never touches the workspace, remove
// with it moves it to the trash, which a prune empties after the retention.
func TestStudentActions(t *testing.T) {
	ctx := t.Context()
	s, e, root := opsSite(t, "ann", "bob")
	work := rootdir.StudentCourse(root, "bob", "intro")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "mine.ipynb"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The workspace's record, as workspace.Init leaves it.
	state := rootdir.WorkspaceState(root, "intro", "bob")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "base.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name            string
		course, student string
		action          string
		opts            site.StudentOptions
		result          string
		err             string
	}{
		{"bad action", "intro", "ann", "kill", site.StudentOptions{}, "", "invalid action"},
		{"workspace with stop", "intro", "ann", api.StudentStop, site.StudentOptions{Workspace: true}, "", "with remove only"},
		{"bad student", "intro", "../etc", api.StudentStop, site.StudentOptions{}, "", "invalid student name"},
		{"unknown course", "nope", "ann", api.StudentStop, site.StudentOptions{}, "", "unknown course"},
		{"active refused", "intro", "runner", api.StudentStop, site.StudentOptions{}, "", "stop refused: runner's server in intro is activity not probed; --force"},
		{"active forced", "intro", "runner", api.StudentStop, site.StudentOptions{Force: true}, "stopped", ""},
		{"stopped: stop", "intro", "ann", api.StudentStop, site.StudentOptions{}, "stopped", ""},
		{"no container", "intro", "zed", api.StudentRemove, site.StudentOptions{}, "none", ""},
		{"remove keeps the workspace", "intro", "bob", api.StudentRemove, site.StudentOptions{}, "removed", ""},
		{"remove with the workspace", "intro", "bob", api.StudentRemove, site.StudentOptions{Workspace: true}, "removed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := s.Student(ctx, tc.course, tc.student, tc.action, tc.opts)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && rep.Result != tc.result:
				t.Errorf("result = %q, want %q", rep.Result, tc.result)
			}
			if tc.name == "active refused" {
				var ae *site.ActiveError
				if !errors.As(err, &ae) {
					t.Errorf("refusal is not an *ActiveError: %T", err)
				}
			}
			if tc.name == "active forced" && rep.Forced == "" {
				t.Errorf("a forced action does not say what it overrode")
			}
			_, statErr := os.Stat(filepath.Join(work, "mine.ipynb"))
			switch tc.name {
			case "remove keeps the workspace":
				if statErr != nil {
					t.Errorf("the workspace went with the container: %v", statErr)
				}
			case "remove with the workspace":
				if statErr == nil || rep.Trash == "" {
					t.Fatalf("workspace still there (%v) or no trash (%q)", statErr, rep.Trash)
				}
				if _, err := os.Stat(filepath.Join(rep.Trash, "mine.ipynb")); err != nil {
					t.Errorf("the workspace is not in the trash: %v", err)
				}
				// Its record goes beside it: the next visit starts afresh.
				if _, err := os.Stat(filepath.Join(rep.Trash+".state", "base.json")); err != nil {
					t.Errorf("the workspace's record is not in the trash: %v", err)
				}
				if _, err := os.Stat(rootdir.WorkspaceState(root, "intro", "bob")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the workspace's record stayed: %v", err)
				}
			}
		})
	}
	if !e.removed["id-intro-bob"] || len(e.stopped) == 0 {
		t.Errorf("engine: removed %v, stopped %v", e.removed, e.stopped)
	}
	// The trash keeps a workspace for the retention period, then lets go.
	if n, err := s.PruneTrash(time.Now(), site.TrashRetention); n != 0 || err != nil {
		t.Errorf("prune now: %d, %v; want nothing pruned", n, err)
	}
	if n, err := s.PruneTrash(time.Now().Add(site.TrashRetention+time.Hour), site.TrashRetention); n != 1 || err != nil {
		t.Errorf("prune after the retention: %d, %v; want 1", n, err)
	}
	if entries, _ := os.ReadDir(rootdir.Trash(root)); len(entries) != 0 {
		t.Errorf("trash not emptied: %v", entries)
	}
}
