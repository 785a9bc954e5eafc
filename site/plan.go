package site

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
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
	// Errors are what could not be planned (a remote out of reach, no
	// valid config yet); the rest of the plan stands beside them.
	Errors []string `json:"errors"`
}

// PlanConfig is what would become of the config repo's head.
type PlanConfig struct {
	// Commit is the config revision the sync would apply.
	Commit string `json:"commit"`
	// Change is "none", "apply" (a new valid revision) or "rejected".
	Change   string                `json:"change"`
	Rejected *configrepo.Rejection `json:"rejected,omitempty"`
}

// PlanPull is a course whose checkout would move.
type PlanPull struct {
	Course string `json:"course"`
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
}

// PlanBuild is one image and what a sync would do about it. Builds are in
// build order: every image after the site images it is built FROM.
type PlanBuild struct {
	Image string `json:"image"`
	// Courses are the courses that run the image.
	Courses []string `json:"courses"`
	Key     string   `json:"key,omitempty"`
	// Dockerfile says where the lookup found it.
	Dockerfile string `json:"dockerfile,omitempty"`
	// Base is the site image the Dockerfile's final stage is built FROM;
	// Bases all the site images it is built FROM (multi-stage builds).
	Base  string   `json:"base,omitempty"`
	Bases []string `json:"bases,omitempty"`
	// Action is what images.Decide says — "build", "tag" (I:latest moves
	// to a passed build), "none", "pin", "hold" (failed recently) — or
	// "error" (the spec cannot be made, or a base cannot be built: see
	// Reason).
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Cascade, on an image built first, lists the images rebuilt after it
	// because they are built on it (directly or not), in build order.
	Cascade []string `json:"cascade,omitempty"`

	forBase bool // rebuilt because a base is
}

// Plan computes what a sync would do now, changing nothing: it compares the
// heads the mirrors hold (as the last fetch left them) with what is checked
// out, built and running. It makes no network call — anyone who can read
// the dashboard can ask for a plan, so a plan must cost the remotes nothing
// — and takes no lock a pull holds while it fetches. Fetch first for a
// plan against the remotes as they are now. With no valid config at all,
// the report says why (the config rejected) beside the error.
func (s *Site) Plan(ctx context.Context, opts PassOptions) (PlanReport, error) {
	rep := PlanReport{Config: PlanConfig{Change: "none"}, Pulls: []PlanPull{}, Builds: []PlanBuild{},
		Actions: []reconcile.Action{}, Errors: []string{}}
	res, err := s.loader.Peek(ctx)
	if res.Current == nil {
		err := &NoConfigError{Rejected: res.Rejected, Err: err}
		if res.Rejected != nil {
			rep.Config = PlanConfig{Commit: res.Rejected.Commit.String(), Change: "rejected", Rejected: res.Rejected}
		}
		rep.Errors = append(rep.Errors, err.Error())
		return rep, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	rev := res.Current
	rep.Config = PlanConfig{Commit: rev.Commit.String(), Change: "none", Rejected: res.Rejected}
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
	rep.Pulls = append(rep.Pulls, pulls...)
	rep.Changes += len(pulls)

	rev.Sources.Refresh()
	rep.Builds = s.planBuilds(ctx, rev)
	for _, pb := range rep.Builds {
		if pb.Action == string(images.ActionBuild) || pb.Action == string(images.ActionTag) || pb.Action == string(images.ActionPin) {
			rep.Changes++
		}
	}

	ctrs, err := s.containersOf(rev.Config)
	var pre reconcile.Result
	if err == nil {
		pre, err = s.pass(ctrs, rev.Config, false).Preview(ctx, rev.Config, opts.AllowMassPrune)
	}
	if err != nil {
		errs = append(errs, err)
	}
	rep.Actions = pre.Actions
	for _, a := range rep.Actions {
		if a.Retires() {
			rep.Changes++
		}
	}
	if rep.Actions == nil {
		rep.Actions = []reconcile.Action{}
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	return rep, errors.Join(errs...)
}

// planBuilds decides about every image as BuildAll would, with the same
// specs and the same decision (images.Decide), in build order. An image
// whose base would not be built (held, failing) is an error, as in a sync.
func (s *Site) planBuilds(ctx context.Context, rev *configrepo.Revision) []PlanBuild {
	b := s.imageBuilder(rev.Config)
	specs, specErrs := s.specs(rev)
	var out []PlanBuild
	at := map[string]int{}
	add := func(pb PlanBuild) {
		at[pb.Image] = len(out)
		out = append(out, pb)
	}
	for _, name := range rev.Config.ImageNames() {
		if err := specErrs[name]; err != nil {
			add(PlanBuild{Image: name, Courses: rev.Config.CoursesUsing(name), Action: string(images.ActionError), Reason: err.Error()})
		}
	}
	now := planAt()
	for _, spec := range specs {
		pb := PlanBuild{Image: spec.Image, Courses: rev.Config.CoursesUsing(spec.Image), Key: spec.Key,
			Dockerfile: spec.Origin.String(), Base: spec.Base, Bases: spec.Bases}
		var blocked, rebuilt []string
		for _, base := range spec.Bases {
			switch out[at[base]].Action {
			case string(images.ActionBuild):
				rebuilt = append(rebuilt, base)
			case string(images.ActionHold), string(images.ActionError):
				blocked = append(blocked, base+" ("+out[at[base]].Action+")")
			}
		}
		d, err := b.Decide(ctx, spec, images.DecideOptions{Now: now})
		switch {
		case len(blocked) > 0:
			pb.Action, pb.Reason = string(images.ActionError), fmt.Sprintf("%v: %s", images.ErrBaseFailed, strings.Join(blocked, ", "))
		case err != nil:
			pb.Action, pb.Reason = string(images.ActionError), err.Error()
		default:
			pb.Action, pb.Reason = string(d.Action), d.Reason
			if d.Action == images.ActionBuild && len(rebuilt) > 0 {
				pb.Reason = fmt.Sprintf("base changed (%s rebuilt first)", strings.Join(rebuilt, ", "))
				pb.forBase = true
			}
		}
		add(pb)
	}
	cascade(out)
	return out
}

// cascade fills Cascade on each image rebuilt on its own account: the
// images rebuilt after it because they are built on it, in build order.
func cascade(builds []PlanBuild) {
	rebuilt := func(pb PlanBuild) bool { return pb.Action == string(images.ActionBuild) }
	for i := range builds {
		if !rebuilt(builds[i]) || builds[i].forBase {
			continue
		}
		on := map[string]bool{builds[i].Image: true}
		for _, pb := range builds[i+1:] {
			if !rebuilt(pb) {
				continue
			}
			for _, b := range pb.Bases {
				if on[b] {
					on[pb.Image] = true
					builds[i].Cascade = append(builds[i].Cascade, pb.Image)
					break
				}
			}
		}
	}
}

// Fetch brings the mirrors of the config repo, and of the course repos of
// the config head, up to date, applying and checking out nothing: what the
// command line does before a plan when no daemon keeps the mirrors fresh.
func (s *Site) Fetch(ctx context.Context) error {
	var errs []error
	if err := s.loader.Fetch(ctx); err != nil {
		errs = append(errs, err)
	}
	res, _ := s.loader.Peek(ctx)
	if res.Current == nil {
		return errors.Join(errs...)
	}
	cfg := res.Current.Config
	branches := map[string][]string{}
	creds := map[string]*manifest.Credentials{}
	var urls []string
	for _, name := range cfg.CourseNames() {
		co := cfg.Courses[name]
		if co.Repo == "." {
			continue
		}
		if _, ok := branches[co.Repo]; !ok {
			urls = append(urls, co.Repo)
			creds[co.Repo] = co.Credentials
		}
		if !slices.Contains(branches[co.Repo], co.Branch) {
			branches[co.Repo] = append(branches[co.Repo], co.Branch)
		}
	}
	for _, u := range urls {
		if _, err := s.mirrors.UpdateBranches(ctx, u, branches[u], creds[u]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// planPulls compares every course's head in its mirror with the commit
// checked out; no network.
func (s *Site) planPulls(_ context.Context, rev *configrepo.Revision) ([]PlanPull, error) {
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
			h, err := s.mirrors.Known(co.Repo, co.Branch)
			if err != nil {
				errs = append(errs, fmt.Errorf("course %s: %w", name, err))
				continue
			}
			to = h.String()
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
