package site

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// A course on hold gets no pulls, no builds and no retirements of its
// containers, while its students are still served: spawns work as ever.
// The hold comes from courses.yaml (suspend: true: the GitOps way, for a
// planned break) or from an operator at run time (nbh-sync suspend: for an
// incident, with no commit to wait for), kept in rootdir.Holds so that it
// outlives the daemon. The pull, the builds and the container pass each
// read the holds at their start.

// holdsFile is the record of the holds made at run time.
type holdsFile struct {
	Courses map[string]runtimeHold `json:"courses"`
}

type runtimeHold struct {
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// ErrNotHeld: resume of a course that is not on hold at run time.
var ErrNotHeld = errors.New("course is not suspended")

// ErrHeldInConfig: resume of a course that courses.yaml suspends, which
// only a commit can lift.
var ErrHeldInConfig = errors.New("course is suspended in courses.yaml")

// suspensions maps every course of cfg on hold to why, in the words a plan
// and a status show: courses.yaml's suspend: true, else the hold made at
// run time. A runtime hold of a course no longer in courses.yaml is
// ignored (there is nothing left to hold).
func (s *Site) suspensions(cfg *manifest.Config) map[string]string {
	out := map[string]string{}
	h := s.holds.read()
	for name, co := range cfg.Courses {
		if co.Suspend {
			out[name] = "course " + name + " is suspended in courses.yaml"
		} else if rh, ok := h.Courses[name]; ok {
			out[name] = holdText(name, rh)
		}
	}
	return out
}

func holdText(course string, rh runtimeHold) string {
	t := "course " + course + " suspended"
	if rh.By != "" {
		t += " by " + rh.By
	}
	t += " at " + rh.Since.UTC().Format(time.RFC3339)
	if rh.Reason != "" {
		t += ": " + rh.Reason
	}
	return t
}

// held reports whether course is on hold now, under the config in force;
// it is the Syncer's Held.
func (s *Site) held(course string) bool {
	s.mu.Lock()
	rev := s.rev
	s.mu.Unlock()
	if rev != nil && rev.Config.Courses[course].Suspend {
		return true
	}
	_, ok := s.holds.read().Courses[course]
	return ok
}

// Holds lists the courses on hold, sorted.
func (s *Site) Holds(ctx context.Context) ([]api.Hold, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return nil, err
	}
	h := s.holds.read()
	out := []api.Hold{}
	for _, name := range cfg.CourseNames() {
		if cfg.Courses[name].Suspend {
			out = append(out, api.Hold{Course: name, Source: "courses.yaml"})
		} else if rh, ok := h.Courses[name]; ok {
			out = append(out, api.Hold{Course: name, Source: "runtime", By: rh.By, Reason: rh.Reason, Since: rh.Since})
		}
	}
	return out, nil
}

// Suspend puts course on hold at run time; it is idempotent (a second call
// keeps the first one's record). The course must be in courses.yaml
// (manifest.ErrUnknownCourse otherwise).
func (s *Site) Suspend(ctx context.Context, course, by, reason string) ([]api.Hold, error) {
	return s.changeHolds(ctx, course, by, reason, true)
}

// Resume lifts a hold made at run time. A course suspended in courses.yaml
// stays suspended: the answer wraps ErrHeldInConfig, and only a commit
// lifts it. A course not on hold gives ErrNotHeld.
func (s *Site) Resume(ctx context.Context, course, by string) ([]api.Hold, error) {
	return s.changeHolds(ctx, course, by, "", false)
}

func (s *Site) changeHolds(ctx context.Context, course, by, reason string, suspend bool) ([]api.Hold, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return nil, err
	}
	co, ok := cfg.Courses[course]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not in courses.yaml", manifest.ErrUnknownCourse, course)
	}
	var rh runtimeHold // the course's hold after the change
	changed := false
	err = s.holds.update(func(h holdsFile) (bool, error) {
		_, had := h.Courses[course]
		switch {
		case suspend && !had:
			h.Courses[course] = runtimeHold{By: by, Reason: reason, Since: time.Now().UTC()}
		case !suspend && !had && co.Suspend:
			return false, fmt.Errorf("%w: set suspend: false (or remove it) for %s and commit", ErrHeldInConfig, course)
		case !suspend && !had:
			return false, fmt.Errorf("%w: %s", ErrNotHeld, course)
		case !suspend:
			delete(h.Courses, course)
		}
		rh, changed = h.Courses[course], suspend != had
		return changed, nil
	})
	switch {
	case err != nil && changed:
		return nil, fmt.Errorf("record the hold of %s: %w", course, err)
	case err != nil:
		return nil, err
	case !changed:
		return s.Holds(ctx) // already as asked
	}
	action, msg := "resume", "course resumed"
	if suspend {
		action, msg = "suspend", holdText(course, rh)
	}
	if by != "" && !suspend {
		msg += " by " + by
	}
	if !suspend && co.Suspend {
		msg += "; still suspended in courses.yaml"
	}
	s.record(ctx, history.Record{Kind: history.KindAction, Course: course, Action: action, Result: "done", Message: msg})
	s.log.InfoContext(ctx, "course "+action, "course", course, "by", by, "reason", reason)
	return s.Holds(ctx)
}

// heldImages returns the images not to build now: those every course of
// which is on hold, unless an image that is built is built FROM them.
// An image with no course (a base image of others) is held only through
// those others.
func heldImages(cfg *manifest.Config, susp map[string]string, bases map[string][]string) map[string]bool {
	out := map[string]bool{}
	if len(susp) == 0 {
		return out
	}
	for _, name := range cfg.ImageNames() {
		users := cfg.CoursesUsing(name)
		if len(users) > 0 && !slices.ContainsFunc(users, func(c string) bool { return susp[c] == "" }) {
			out[name] = true
		}
	}
	// A held image that a built image needs is built after all, and so
	// are its own bases: repeat until nothing changes.
	for changed := true; changed; {
		changed = false
		for _, img := range slices.Sorted(maps.Keys(bases)) {
			if out[img] {
				continue
			}
			for _, b := range bases[img] {
				if out[b] {
					delete(out, b)
					changed = true
				}
			}
		}
	}
	return out
}

// holdPlan marks the pulls and builds of a plan that a hold withholds (by
// reconcile.GuardSuspended, as the container actions are) and returns how
// many of them the plan had counted as changes.
func holdPlan(rep *api.Plan, cfg *manifest.Config, susp map[string]string) (withheld int) {
	if len(susp) == 0 {
		return 0
	}
	for i, p := range rep.Pulls {
		if susp[p.Course] != "" {
			rep.Pulls[i].Guard = string(reconcile.GuardSuspended)
			withheld++
		}
	}
	bases := map[string][]string{}
	for _, b := range rep.Builds {
		bases[b.Image] = b.Bases
	}
	held := heldImages(cfg, susp, bases)
	for i, b := range rep.Builds {
		if !held[b.Image] {
			continue
		}
		switch images.Action(b.Action) {
		case images.ActionBuild, images.ActionTag, images.ActionPin:
			withheld++
		}
		rep.Builds[i].Guard = string(reconcile.GuardSuspended)
		rep.Builds[i].Reason += "; held: every course of the image is suspended (" + strings.Join(b.Courses, ", ") + ")"
	}
	return withheld
}
