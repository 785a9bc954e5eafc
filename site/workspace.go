package site

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/workspace"
)

// This file gives each student their own copy of a course (package
// workspace): made at the first spawn, merged with the course's new
// commits by container passes while the student's server is not in use,
// and reset or shared on request.

// mergeConcurrency bounds the workspaces a pass merges at once: a merge is
// disk work, mostly small files, and the pass has containers to stop too.
const mergeConcurrency = 4

// stores are the workspace stores of the site, one per course, kept for the
// life of the Site so that each course commit's snapshot is read once.
type stores struct {
	mu sync.Mutex
	m  map[string]*workspace.Store
}

func (s *Site) store(course string) *workspace.Store {
	s.stores.mu.Lock()
	defer s.stores.mu.Unlock()
	if s.stores.m == nil {
		s.stores.m = map[string]*workspace.Store{}
	}
	st, ok := s.stores.m[course]
	if !ok {
		st = workspace.NewStore(rootdir.Workspaces(s.opts.Root, course))
		s.stores.m[course] = st
	}
	return st
}

// workspaceOf is the workspace of student in course. Its files are owned
// by uid:gid when given (the uid the spawn resolved), else by the owner of
// the student's folder, which the spawn gave to the student.
func (s *Site) workspaceOf(course, student, uid, gid string) *workspace.Workspace {
	dir := rootdir.StudentCourse(s.opts.Root, student, course)
	u, g := ownerOf(uid, gid, dir)
	return &workspace.Workspace{Dir: dir, State: rootdir.WorkspaceState(s.opts.Root, course, student),
		Store: s.store(course), UID: u, GID: g}
}

// ownerOf returns uid and gid as numbers, else the owner of dir, else -1
// (ownership left alone).
func ownerOf(uid, gid, dir string) (int, int) {
	if u, err := strconv.Atoi(uid); err == nil {
		g, err := strconv.Atoi(gid)
		if err != nil {
			g = u
		}
		return u, g
	}
	if st, err := os.Stat(dir); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			return int(sys.Uid), int(sys.Gid)
		}
	}
	return -1, -1
}

// courseSource is the course's work tree at its commit, with its snapshot
// taken while no checkout runs: the workspace operations after it find the
// snapshot in the store and never read the tree, which a pull may be
// checking out anew meanwhile.
func (s *Site) courseSource(ctx context.Context, co manifest.Course) (workspace.Source, error) {
	var src workspace.Source
	err := s.syncer.ReadTree(co.Name, func(dir string, commit plumbing.Hash) error {
		src = workspace.Source{Tree: dir, Commit: commit.String(), Exclude: co.WorkspaceExclude}
		_, err := s.store(co.Name).Snapshot(ctx, src)
		return err
	})
	return src, err
}

// initWorkspace makes the student's workspace if it is not made yet: the
// course's files at its current commit, owned by the student. It runs in
// the spawn, before the server starts. A failure is logged and recorded,
// and the spawn goes on: a server with the student's own files beats none,
// and the next start tries again.
func (s *Site) initWorkspace(ctx context.Context, co manifest.Course, student, uid, gid string) {
	ws := s.workspaceOf(co.Name, student, uid, gid)
	if _, err := ws.Commit(); !errors.Is(err, workspace.ErrNotInitialized) {
		return // made already (or unreadable: status says so)
	}
	start := time.Now()
	src, err := s.courseSource(ctx, co)
	var rep *workspace.Report
	if err == nil {
		rep, err = ws.Init(ctx, src, workspace.Mode(co.Workspace))
	}
	if errors.Is(err, workspace.ErrInitialized) {
		return // another process made it meanwhile
	}
	s.recordWorkspace(ctx, co.Name, student, "init", src.Commit, rep, err, time.Since(start))
}

// Workspace operations as history records: Action is the operation, Result
// ok, conflicts, busy or failed, Message what changed.
func (s *Site) recordWorkspace(ctx context.Context, course, student, op, commit string, rep *workspace.Report, err error, d time.Duration) {
	r := history.Record{Kind: history.KindWorkspace, Course: course, Student: student, Action: op, Commit: commit, Duration: d}
	switch {
	case errors.Is(err, workspace.ErrBusy):
		r.Result, r.Message = "busy", err.Error()
	case err != nil:
		r.Result, r.Message = "failed", err.Error()
		s.log.WarnContext(ctx, "workspace "+op+" failed", "course", course, "student", student, "err", err)
	default:
		r.Result, r.Message = reportResult(rep), reportText(rep)
		s.log.InfoContext(ctx, "workspace "+op, "course", course, "student", student, "commit", commit, "result", r.Result, "changes", r.Message)
	}
	s.record(ctx, r)
}

func reportResult(rep *workspace.Report) string {
	if len(rep.Conflicts) > 0 && rep.Op != "reset" {
		return "conflicts"
	}
	return "ok"
}

// reportText says in one line what an operation did.
func reportText(rep *workspace.Report) string {
	var parts []string
	for _, c := range []struct {
		what  string
		paths []string
	}{{"added", rep.Added}, {"updated", rep.Updated}, {"merged", rep.Merged}, {"restored", rep.Restored},
		{"removed", rep.Removed}, {"kept", rep.Kept}, {"skipped", rep.Skipped}} {
		if len(c.paths) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", len(c.paths), c.what))
		}
	}
	for _, c := range rep.Conflicts {
		t := fmt.Sprintf("%s beside %s (%s", c.Beside, c.Path, c.Reason)
		if len(c.Cells) > 0 {
			t += ": " + strings.Join(c.Cells, ", ")
		}
		parts = append(parts, t+")")
	}
	if len(parts) == 0 {
		return "nothing to change"
	}
	return strings.Join(parts, "; ")
}

// studentWorkspaces lists the students who have a workspace of course.
func (s *Site) studentWorkspaces(course string) []string {
	ents, err := os.ReadDir(filepath.Dir(rootdir.WorkspaceState(s.opts.Root, course, "x")))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && naming.CheckStudent(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// mergeDecision says whether a workspace behind its course may be merged
// now, from what the container pass decided about the student's server (a
// nil action: they have none) and whether that action's stop or removal
// is carried out (done; for a plan, it is assumed). Only a server not in
// use once the pass is over lets the merge through: none, a stopped one,
// one the pass stops or removes. A server the pass keeps running is in
// use, whatever its activity — an idle one kept by a guard included: a
// merge never races a student's saves.
func mergeDecision(a *reconcile.Action, done bool) (bool, string) {
	switch {
	case a == nil:
		return true, "no server"
	case a.State == containers.Stopped:
		return true, "server stopped"
	case a.Retires() && done:
		return true, fmt.Sprintf("server %s by the pass: %s", pastTense(a.Kind), a.Reason)
	default:
		return false, "server in use: " + a.Reason
	}
}

func pastTense(k reconcile.Kind) string {
	if k == reconcile.Stop {
		return "stopped"
	}
	return "removed"
}

// workspaceState is one workspace and what a pass would do about it.
type workspaceState struct {
	course  manifest.Course
	student string
	plan    api.PlanWorkspace
}

// planWorkspaces decides about every workspace of cfg's courses, as a pass
// that carried out what done says would: the one decision plan, why and
// the pass share. commits are the courses' checked-out commits.
func (s *Site) planWorkspaces(cfg *manifest.Config, commits map[string]string, actions []reconcile.Action, done func(reconcile.Action) bool) []workspaceState {
	byStudent := map[[2]string]*reconcile.Action{}
	for i, a := range actions {
		byStudent[[2]string{a.Course, a.Student}] = &actions[i]
	}
	var out []workspaceState
	for _, name := range cfg.CourseNames() {
		co := cfg.Courses[name]
		for _, student := range s.studentWorkspaces(name) {
			ws := s.workspaceOf(name, student, "", "")
			p := api.PlanWorkspace{Course: name, Student: student, Action: "none"}
			at, err := ws.Commit()
			p.Commit = at
			behind, berr := ws.Behind(commits[name])
			switch {
			case errors.Is(err, workspace.ErrNotInitialized):
				p.Reason = "not made yet: made when the student's server next starts"
			case err != nil || berr != nil:
				p.Reason = "unreadable: " + cmp.Or(err, berr).Error()
			case commits[name] == "":
				p.Reason = "the course is not checked out"
			case !behind && at == commits[name]:
				p.Reason = "at the course's commit"
			case !behind:
				p.Reason = "mode none: the folder is the student's alone"
			default:
				p.To = commits[name]
				a := byStudent[[2]string{name, student}]
				ok, why := mergeDecision(a, a != nil && done(*a))
				p.Action, p.Reason = "wait", why+"; merged once idle"
				if ok {
					p.Action, p.Reason = "merge", why
				}
			}
			out = append(out, workspaceState{course: co, student: student, plan: p})
		}
	}
	return out
}

// checkedOut returns each course's checked-out commit, as recorded.
func (s *Site) checkedOut() map[string]string {
	st, _ := gitwatch.ReadStatus(s.opts.Root)
	out := map[string]string{}
	for _, c := range st.Courses {
		if !c.Commit.IsZero() {
			out[c.Course] = c.Commit.String()
		}
	}
	return out
}

// mergeWorkspaces is the workspace part of a container pass: every
// workspace behind its course whose student's server is not in use after
// the pass (res: its plan, and what became of each retirement) is merged,
// mergeConcurrency at a time; then old backups are pruned. A student's
// failure is recorded and logged, never the pass's.
func (s *Site) mergeWorkspaces(ctx context.Context, cfg *manifest.Config, ctrs *containers.Manager, res reconcile.Result) {
	doneIDs := map[string]bool{}
	for _, o := range res.Outcomes {
		doneIDs[o.Action.ID] = o.Done
	}
	states := s.planWorkspaces(cfg, s.checkedOut(), res.Actions, func(a reconcile.Action) bool { return doneIDs[a.ID] })
	sem := make(chan struct{}, mergeConcurrency)
	var wg sync.WaitGroup
	for _, w := range states {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if w.plan.Action == "merge" {
				s.mergeOne(ctx, ctrs, w, res.At)
			}
			ws := s.workspaceOf(w.course.Name, w.student, "", "")
			if _, err := ws.Prune(ctx, w.course.WorkspaceRetention.Std()); err != nil {
				s.log.WarnContext(ctx, "workspace backups not pruned", "course", w.course.Name, "student", w.student, "err", err)
			}
		})
	}
	wg.Wait()
}

// mergeOne merges one workspace under the student's lock, which a spawn
// holds until the server is handed out: a student arriving during the
// merge waits for it (merges take milliseconds), and one handed out since
// the plan is left for the next pass.
func (s *Site) mergeOne(ctx context.Context, ctrs *containers.Manager, w workspaceState, planned time.Time) {
	unlock, err := ctrs.Locks().Lock(ctx, w.course.Name, w.student)
	if err != nil {
		return
	}
	defer unlock()
	if t := ctrs.Locks().HandedOut(w.course.Name, w.student); t.After(planned) {
		return
	}
	start := time.Now()
	src, err := s.courseSource(ctx, w.course)
	var rep *workspace.Report
	if err == nil {
		rep, err = s.workspaceOf(w.course.Name, w.student, "", "").Update(ctx, src)
	}
	s.recordWorkspace(ctx, w.course.Name, w.student, "merge", src.Commit, rep, err, time.Since(start))
}

// WorkspaceOpen gives the student one course file in their workspace if
// they have none there yet (a lazy workspace's copy on demand; a no-op for
// a file they have): what the front door calls before it opens a notebook.
func (s *Site) WorkspaceOpen(ctx context.Context, course, student, path string) error {
	_, err := s.workspaceOp(ctx, course, student, path, "open")
	return err
}

// Reset gives back the course's version of one file of the student's
// workspace; theirs, when it differs, is kept beside it.
func (s *Site) Reset(ctx context.Context, course, student, path string) (*workspace.Report, error) {
	return s.workspaceOp(ctx, course, student, path, "reset")
}

func (s *Site) workspaceOp(ctx context.Context, course, student, path, op string) (*workspace.Report, error) {
	co, err := s.lookupWorkspace(ctx, course, student)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	src, err := s.courseSource(ctx, co)
	if err != nil {
		return nil, err
	}
	ws := s.workspaceOf(course, student, "", "")
	var rep *workspace.Report
	if op == "reset" {
		rep, err = ws.Reset(ctx, src, path)
	} else {
		rep, err = ws.Open(ctx, src, path, false)
	}
	if err == nil && op == "open" && !rep.Changed() {
		return rep, nil // nothing to remember
	}
	if !errors.Is(err, workspace.ErrBadPath) && !errors.Is(err, workspace.ErrNotInCourse) {
		s.recordWorkspace(ctx, course, student, op, src.Commit, rep, err, time.Since(start))
	}
	return rep, err
}

// lookupWorkspace returns the course of a workspace operation, refusing
// an unknown course or student name.
func (s *Site) lookupWorkspace(ctx context.Context, course, student string) (manifest.Course, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return manifest.Course{}, err
	}
	co, err := cfg.Course(course)
	if err != nil {
		return manifest.Course{}, err
	}
	if err := naming.CheckStudent(student); err != nil {
		return manifest.Course{}, err
	}
	if _, err := os.Stat(rootdir.WorkspaceState(s.opts.Root, course, student)); errors.Is(err, fs.ErrNotExist) {
		return manifest.Course{}, fmt.Errorf("%s has no workspace of %s: %w", student, course, workspace.ErrNotInitialized)
	}
	return co, nil
}

// lastWorkspaceEvents returns, per course and student, the newest
// workspace record of the history (none without a history).
func (s *Site) lastWorkspaceEvents(ctx context.Context) map[[2]string]history.Record {
	out := map[[2]string]history.Record{}
	if s.opts.History == nil {
		return out
	}
	recs, err := s.opts.History.Query(ctx, history.Query{Kinds: []history.Kind{history.KindWorkspace}, Limit: 10000})
	if err != nil {
		return out
	}
	for _, r := range recs { // newest first
		k := [2]string{r.Course, r.Student}
		if _, seen := out[k]; !seen {
			out[k] = r
		}
	}
	return out
}

func workspaceEvent(r history.Record) api.WorkspaceEvent {
	return api.WorkspaceEvent{Time: r.Time, Op: r.Action, Commit: r.Commit, Result: r.Result, Message: r.Message}
}

// planWorkspaceViews is the workspace part of a plan: every workspace,
// what the pass would do about it (its retirements assumed carried out),
// and its last recorded operation.
func (s *Site) planWorkspaceViews(ctx context.Context, cfg *manifest.Config, actions []reconcile.Action) []api.PlanWorkspace {
	last := s.lastWorkspaceEvents(ctx)
	out := []api.PlanWorkspace{}
	for _, w := range s.planWorkspaces(cfg, s.checkedOut(), actions, reconcile.Action.Retires) {
		if r, ok := last[[2]string{w.course.Name, w.student}]; ok {
			ev := workspaceEvent(r)
			w.plan.Last = &ev
		}
		out = append(out, w.plan)
	}
	return out
}

// workspaceViews sums up each course's workspaces for status: how many,
// how many behind, how many whose last merge left conflicts, the latest
// merge.
func (s *Site) workspaceViews(ctx context.Context, cfg *manifest.Config) map[string]api.WorkspacesView {
	last := s.lastWorkspaceEvents(ctx)
	commits := s.checkedOut()
	out := map[string]api.WorkspacesView{}
	for _, name := range cfg.CourseNames() {
		var v api.WorkspacesView
		for _, student := range s.studentWorkspaces(name) {
			v.Count++
			if c := commits[name]; c == "" {
				// Not checked out: nothing to be behind.
			} else if behind, err := s.workspaceOf(name, student, "", "").Behind(c); err == nil && behind {
				v.Behind++
			}
			r, ok := last[[2]string{name, student}]
			if !ok || r.Action != "merge" {
				continue
			}
			if r.Result == "conflicts" {
				v.Conflicts++
			}
			if v.LastMerge == nil || r.Time.After(v.LastMerge.Time) {
				v.LastMerge = &api.WorkspaceMerge{Student: student, WorkspaceEvent: workspaceEvent(r)}
			}
		}
		out[name] = v
	}
	return out
}
