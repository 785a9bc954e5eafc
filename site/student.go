package site

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// An operator acts on one student's server: stop it, restart it, remove
// it (and, separately confirmed, move the student's work to the trash).
// None of these is done to a student whose server is active — by the
// container pass's own rule (reconcile.Active) — unless forced, so that an
// operator's command interrupts nobody by accident; the refusal says what
// the server is doing.

// TrashRetention is how long a workspace moved to the trash is kept before
// a container pass deletes it.
const TrashRetention = 30 * 24 * time.Hour

// trashStamp names a trash entry: UTC, sortable, unique enough.
const trashStamp = "20060102T150405.000000000Z"

// StudentOptions tune an action on one student's server.
type StudentOptions struct {
	// Force acts even when the server is active.
	Force bool
	// Workspace, with remove, moves the student's work for the course to
	// the trash too. The caller has had it confirmed.
	Workspace bool
	// By says who asks, for the history.
	By string
}

// ActiveError refuses an action on a student whose server is active.
type ActiveError struct {
	Course, Student, Action string
	// Activity is what the server is doing, in the plan's words.
	Activity string
}

func (e *ActiveError) Error() string {
	return fmt.Sprintf("%s refused: %s's server in %s is %s; --force (force: true) acts anyway", e.Action, e.Student, e.Course, e.Activity)
}

// StudentReport is what an action on one student's server did: the API's
// document, and for a restart the server handed back (with what the front
// door needs to route to it).
type StudentReport struct {
	api.StudentResult
	Spawned *containers.Spawned
}

// ErrBadAction: not one of stop, restart, remove (or --workspace without
// remove).
var ErrBadAction = errors.New("invalid action")

// Student carries out action (api.StudentStop, StudentRestart,
// StudentRemove) on the server of student in course. Errors: a
// naming.ErrBadStudent or ErrUnknownCourse error for bad names (a
// course no longer in courses.yaml is accepted while the site has had it);
// *ActiveError when the server is active and opts.Force is not set;
// ErrBadAction.
func (s *Site) Student(ctx context.Context, course, student, action string, opts StudentOptions) (rep StudentReport, err error) {
	res := &rep.StudentResult
	*res = api.StudentResult{Course: course, Student: student, Action: action}
	switch {
	case action != api.StudentStop && action != api.StudentRestart && action != api.StudentRemove:
		return rep, fmt.Errorf("%w %q: want stop, restart or remove", ErrBadAction, action)
	case opts.Workspace && action != api.StudentRemove:
		return rep, fmt.Errorf("%w: --workspace goes with remove only", ErrBadAction)
	}
	if err := naming.CheckStudent(student); err != nil {
		return rep, err
	}
	cfg, err := s.Config(ctx)
	if err != nil {
		return rep, err
	}
	co, known := cfg.Courses[course]
	if !known && !s.known.update(ctx, cfg, false)[course] {
		return rep, fmt.Errorf("course %q: %w", course, manifest.ErrUnknownCourse)
	}
	if !known && action == api.StudentRestart {
		// Its server could be stopped, never started again.
		return rep, fmt.Errorf("restart: course %q is no longer in courses.yaml: %w", course, manifest.ErrUnknownCourse)
	}
	if !known {
		co = manifest.Course{Idle: cfg.Defaults.Idle}
	}
	co.Name = course
	mgr, err := s.containersOf(cfg)
	if err != nil {
		return rep, err
	}
	unlock, err := mgr.Locks().Lock(ctx, course, student)
	if err != nil {
		return rep, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	c, err := mgr.Get(ctx, course, student)
	switch {
	case errors.Is(err, containers.ErrNotFound):
		res.Result = "none"
	case err != nil:
		return rep, err
	default:
		res.Container = c.Name
		r, probed := s.pass(ctx, mgr, cfg, false).ObserveOne(ctx, cfg, c)
		if active, why := reconcile.Active(co, c, r, probed, s.planAt()); active {
			if !opts.Force {
				return rep, &ActiveError{Course: course, Student: student, Action: action, Activity: why}
			}
			res.Forced = why
		}
		switch action {
		case api.StudentStop:
			err, res.Result = mgr.Stop(ctx, c.ID), "stopped"
		case api.StudentRemove:
			err, res.Result = mgr.Remove(ctx, c.ID), "removed"
		case api.StudentRestart:
			err, res.Result = mgr.Stop(ctx, c.ID), "restarted"
		}
		if err != nil {
			return rep, fmt.Errorf("%s %s: %w", action, c.Name, err)
		}
	}
	if opts.Workspace {
		if res.Trash, err = s.trash(course, student); err != nil {
			s.recordStudent(ctx, *res, opts, err)
			return rep, err
		}
	}
	if action == api.StudentRestart {
		// Spawn takes the student's lock itself; the stop above is done.
		unlock()
		locked = false
		sp, err := s.Spawn(ctx, course, student, c.UID)
		if err != nil {
			s.recordStudent(ctx, *res, opts, err)
			return rep, fmt.Errorf("restart %s: %w", naming.Container(course, student), err)
		}
		res.Result, res.Container = "restarted", sp.Name
		res.Spawn = &api.SpawnResult{Name: sp.Name, State: string(sp.State), Port: sp.Port, URL: sp.URL}
		rep.Spawned = &sp
	}
	s.recordStudent(ctx, *res, opts, nil)
	return rep, nil
}

func (s *Site) recordStudent(ctx context.Context, res api.StudentResult, opts StudentOptions, err error) {
	msg := "by " + cmp.Or(opts.By, "an operator")
	if res.Forced != "" {
		msg += ", forced although " + res.Forced
	}
	if res.Trash != "" {
		msg += "; workspace moved to " + res.Trash
	}
	result := res.Result
	if err != nil {
		result, msg = "failed", msg+": "+err.Error()
	}
	s.record(ctx, history.Record{Kind: history.KindAction, Course: res.Course, Student: res.Student,
		Action: "operator-" + res.Action, Result: result, Message: msg})
	s.log.InfoContext(ctx, "operator action", "course", res.Course, "student", res.Student, "action", res.Action, "result", result, "by", opts.By)
}

// trash moves a student's work for a course to the trash and returns
// where; "" when there is none. The caller holds the student's lock, so
// that no spawn mounts the folder meanwhile.
func (s *Site) trash(course, student string) (string, error) {
	src := rootdir.StudentCourse(s.opts.Root, student, course)
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	dst := rootdir.TrashEntry(s.opts.Root, course, student, time.Now().UTC().Format(trashStamp))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", fmt.Errorf("move workspace to the trash: %w", err)
	}
	// Same file system (both under ROOT): a rename, atomic, no copy.
	if err := os.Rename(src, dst); err != nil {
		return "", fmt.Errorf("move workspace to the trash: %w", err)
	}
	// The workspace's record (its base and the backups of its merges) goes
	// beside it: the next visit makes a fresh copy, and nothing a backup
	// holds of the student's is lost before the trash is pruned.
	state := rootdir.WorkspaceState(s.opts.Root, course, student)
	if err := os.Rename(state, dst+trashStateSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dst, fmt.Errorf("move the workspace's record to the trash: %w", err)
	}
	return dst, nil
}

// trashStateSuffix names, beside a trashed workspace, its record.
const trashStateSuffix = ".state"

// PruneTrash deletes the workspaces moved to the trash longer than
// retention ago, and returns how many. An entry whose name is not a stamp
// is left alone: nbh-sync did not put it there.
func (s *Site) PruneTrash(now time.Time, retention time.Duration) (int, error) {
	entries, _ := filepath.Glob(filepath.Join(rootdir.Trash(s.opts.Root), "*", "*", "*"))
	n := 0
	var errs []error
	for _, e := range entries {
		t, err := time.Parse(trashStamp, strings.TrimSuffix(filepath.Base(e), trashStateSuffix))
		if err != nil || now.Sub(t) < retention {
			continue
		}
		if err := os.RemoveAll(e); err != nil {
			errs = append(errs, err)
			continue
		}
		if !strings.HasSuffix(e, trashStateSuffix) {
			n++ // a workspace; its record goes with it uncounted
		}
		// Empty student and course folders go too; Remove fails harmlessly
		// on one that is not empty.
		_ = os.Remove(filepath.Dir(e))
		_ = os.Remove(filepath.Dir(filepath.Dir(e)))
	}
	return n, errors.Join(errs...)
}

// maxStudents bounds a search's answer; maxProbes the servers it probes
// (each probe is a request to a student's server).
const (
	maxStudents = 50
	maxProbes   = 10
)

// Students finds the servers and workspaces whose student (or course, or
// container name) contains q, for the admin view: their state, activity
// (by the pass's rule; the first few running servers only) and workspace
// size. An empty q matches everyone.
func (s *Site) Students(ctx context.Context, q string) (api.Students, error) {
	out := api.Students{Students: []api.StudentView{}}
	cfg, err := s.Config(ctx)
	if err != nil {
		return out, err
	}
	mgr, err := s.containersOf(cfg)
	if err != nil {
		return out, err
	}
	d := reconcile.NewDesired(cfg, nil)
	d.Had = s.known.update(ctx, cfg, false)
	cs, err := mgr.List(ctx, d.Adopts)
	if err != nil {
		return out, err
	}
	q = strings.ToLower(q)
	type key struct{ course, student string }
	seen := map[key]bool{}
	var found []api.StudentView
	byKey := map[key]containers.Container{}
	for _, c := range cs {
		if strings.Contains(c.Name, q) {
			k := key{c.Course, c.Student}
			seen[k], byKey[k] = true, c
			found = append(found, api.StudentView{Course: c.Course, Student: c.Student, Container: c.Name, State: string(c.State), Port: c.Port, StartedAt: c.StartedAt})
		}
	}
	// Students with work but no server now.
	dirs, _ := filepath.Glob(filepath.Join(rootdir.Student(s.opts.Root, "*"), "*"))
	for _, dir := range dirs {
		k := key{filepath.Base(dir), filepath.Base(filepath.Dir(dir))}
		if seen[k] || !strings.Contains(naming.Container(k.course, k.student), q) {
			continue
		}
		if _, ok := cfg.Courses[k.course]; !ok && !d.Had[k.course] {
			continue
		}
		seen[k] = true
		found = append(found, api.StudentView{Course: k.course, Student: k.student, State: "none"})
	}
	slices.SortFunc(found, func(a, b api.StudentView) int {
		return cmp.Or(cmp.Compare(a.Student, b.Student), cmp.Compare(a.Course, b.Course))
	})
	if len(found) > maxStudents {
		found, out.Truncated = found[:maxStudents], true
	}
	probes := 0
	now := s.planAt()
	pass := s.pass(ctx, mgr, cfg, false)
	for i := range found {
		v := &found[i]
		v.WorkspaceBytes = dirSize(rootdir.StudentCourse(s.opts.Root, v.Student, v.Course))
		c, ok := byKey[key{v.Course, v.Student}]
		if !ok || c.State != containers.Running {
			continue
		}
		if probes >= maxProbes {
			v.Active, v.Activity = true, "not probed (search narrower)"
			continue
		}
		probes++
		co := cfg.Courses[v.Course]
		co.Name = v.Course
		r, probed := pass.ObserveOne(ctx, cfg, c)
		v.Active, v.Activity = reconcile.Active(co, c, r, probed, now)
		if probed {
			v.LastActivity = r.Last()
		}
	}
	out.Students = found
	return out, nil
}

// dirSize is the size in bytes of the files under dir (-1 if dir cannot be
// read; 0 if it does not exist).
func dirSize(dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return n
}
