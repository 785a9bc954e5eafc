package site

import (
	"context"
	"errors"
	"fmt"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// PlanReport is what a sync would do now: the document of
// `nbh-sync plan --json` and /api/plan.
type PlanReport struct {
	Config  PlanConfig         `json:"config"`
	Pulls   []PlanPull         `json:"pulls"`
	Builds  []PlanBuild        `json:"builds"`
	Actions []reconcile.Action `json:"actions"`
	// Changes counts the pulls, builds and retirements the sync would make.
	Changes int `json:"changes"`
}

// PlanConfig is what would become of the config repo's head.
type PlanConfig struct {
	// Commit is the config revision the sync would apply.
	Commit string `json:"commit"`
	// Change is "none", "apply" (a new valid revision) or "rejected".
	Change   string              `json:"change"`
	Rejected *gitwatch.Rejection `json:"rejected,omitempty"`
}

// PlanPull is a course whose checkout would move.
type PlanPull struct {
	Course string `json:"course"`
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
}

// PlanBuild is one image and what a sync would do about it.
type PlanBuild struct {
	Image string `json:"image"`
	// Courses are the courses that run the image.
	Courses []string `json:"courses"`
	Key     string   `json:"key,omitempty"`
	// Action is "build", "none" (a passed build of the key exists), "pin"
	// or "error" (the spec cannot be made: see Reason).
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// Plan computes what a sync would do now, changing nothing the site serves:
// it fetches into the mirrors (a cache) to see the remote heads, but checks
// nothing out, builds nothing, and stops or removes nothing.
func (s *Site) Plan(ctx context.Context, opts PassOptions) (PlanReport, error) {
	res, err := s.loader.Peek(ctx)
	if res.Current == nil {
		return PlanReport{}, &NoConfigError{Rejected: res.Rejected, Err: err}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	rev := res.Current
	rep := PlanReport{Config: PlanConfig{Commit: rev.Commit.String(), Change: "none", Rejected: res.Rejected},
		Pulls: []PlanPull{}, Builds: []PlanBuild{}}
	switch {
	case res.Rejected != nil:
		rep.Config.Change = "rejected"
	case res.Changed:
		rep.Config.Change = "apply"
		rep.Changes++
	}

	pulls, err := s.planPulls(ctx, rev)
	if err != nil {
		errs = append(errs, err)
	}
	rep.Pulls = pulls
	rep.Changes += len(pulls)

	rev.Sources.Refresh()
	b := s.imageBuilder(rev.Config)
	for _, name := range rev.Config.ImageNames() {
		pb := PlanBuild{Image: name, Courses: rev.Config.CoursesUsing(name)}
		spec, err := images.NewSpec(rev.Config, name, s.trees(rev))
		switch {
		case err != nil:
			pb.Action, pb.Reason = "error", err.Error()
		case spec.Pin != "":
			pb.Key, pb.Action, pb.Reason = spec.Key, "pin", "pinned to build "+spec.Pin
		default:
			pb.Key = spec.Key
			pb.Action, pb.Reason = buildDecision(ctx, b, spec)
		}
		if pb.Action == "build" {
			rep.Changes++
		}
		rep.Builds = append(rep.Builds, pb)
	}

	obs, err := s.pass(rev.Config, false).Observe(ctx, rev.Config, opts.AllowMassPrune)
	if err != nil {
		errs = append(errs, err)
	} else {
		rep.Actions = reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, planAt())
		for _, a := range rep.Actions {
			if a.Retires() {
				rep.Changes++
			}
		}
	}
	if rep.Actions == nil {
		rep.Actions = []reconcile.Action{}
	}
	return rep, errors.Join(errs...)
}

// buildDecision says whether spec needs a build, and why.
func buildDecision(ctx context.Context, b *images.Builder, spec *images.Spec) (action, reason string) {
	builds, err := b.Builds(ctx, spec.Image)
	if err != nil {
		return "error", err.Error()
	}
	var latest string
	for _, bd := range builds {
		if bd.Key == spec.Key && bd.Smoke == "passed" {
			return "none", "a passed build of key " + spec.ShortKey() + " exists"
		}
		if bd.Latest {
			latest = bd.Key
		}
	}
	if latest == "" {
		return "build", "no build yet"
	}
	return "build", fmt.Sprintf("inputs changed (serving %s, inputs now %s)", short(latest), spec.ShortKey())
}

// planPulls checks every course remote's head (fetching into the mirror)
// against the commit checked out.
func (s *Site) planPulls(ctx context.Context, rev *gitwatch.ConfigRevision) ([]PlanPull, error) {
	prev, err := gitwatch.ReadStatus(s.opts.Root)
	if err != nil {
		return nil, err
	}
	cfg := rev.Config
	var out []PlanPull
	var errs []error
	for _, name := range cfg.CourseNames() {
		co := cfg.Courses[name]
		var to string
		if co.Repo == "." {
			to = rev.Commit.String()
		} else {
			h, err := s.mirrors.Update(ctx, co.Repo, co.Branch, co.Credentials)
			if err != nil {
				errs = append(errs, fmt.Errorf("course %s: %w", name, err))
				continue
			}
			to = h.Commit.String()
		}
		old, _ := prev.Course(name)
		from := old.Commit.String()
		if old.Commit.IsZero() {
			from = ""
		}
		if from != to || old.Path != co.Path {
			out = append(out, PlanPull{Course: name, From: from, To: to})
		}
	}
	return out, errors.Join(errs...) // sorted: CourseNames is
}
