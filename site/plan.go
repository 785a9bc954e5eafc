package site

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// Plan computes what a sync would do now, changing nothing: it compares the
// heads the mirrors hold (as the last fetch left them) with what is checked
// out, built and running. It makes no network call — anyone who can read
// the dashboard can ask for a plan, so a plan must cost the remotes nothing
// — and takes no lock a pull holds while it fetches. Fetch first for a
// plan against the remotes as they are now. With no valid config at all,
// the report says why (the config rejected) beside the error.
func (s *Site) Plan(ctx context.Context, opts PassOptions) (api.Plan, error) {
	rep := api.Plan{Config: api.PlanConfig{Change: "none"}, Pulls: []api.PlanPull{}, Builds: []api.PlanBuild{},
		Actions: []api.PlanAction{}, Workspaces: []api.PlanWorkspace{}, Errors: []string{}}
	res, err := s.loader.Peek(ctx)
	if res.Current == nil {
		err := &NoConfigError{Rejected: res.Rejected, Err: err}
		if res.Rejected != nil {
			rep.Config = api.PlanConfig{Commit: res.Rejected.Commit.String(), Change: "rejected", Rejected: rejection(res.Rejected)}
		}
		rep.Errors = append(rep.Errors, err.Error())
		return rep, err
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	rev := res.Current
	rep.Config = api.PlanConfig{Commit: rev.Commit.String(), Change: "none", Rejected: rejection(res.Rejected)}
	switch {
	case res.Rejected != nil:
		rep.Config.Change = "rejected"
	case res.Changed:
		rep.Config.Change = "apply"
		rep.Changes++
	}

	// The container pass's observation — the engine's list of every
	// container, the longest call of a plan — runs while the pulls and
	// the builds are planned: a plan takes about as long as that list.
	type preview struct {
		res reconcile.Result
		err error
	}
	previewed := make(chan preview, 1)
	if ctrs, err := s.containersOf(rev.Config); err != nil {
		previewed <- preview{err: err}
	} else {
		s.negotiate(ctx)
		go func() {
			res, err := s.pass(ctx, ctrs, rev.Config, false).Preview(ctx, rev.Config, opts.AllowMassPrune)
			previewed <- preview{res, err}
		}()
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

	rep.Changes -= holdPlan(&rep, rev.Config, s.suspensions(rev.Config))

	p := <-previewed
	pre := p.res
	if p.err != nil {
		errs = append(errs, p.err)
	}
	rep.Actions = slices.Grow(rep.Actions, len(pre.Actions))
	for _, a := range pre.Actions {
		rep.Actions = append(rep.Actions, planAction(a))
		if a.Retires() || a.Kind == reconcile.WarmUp {
			rep.Changes++
		}
	}
	if err == nil {
		rep.Workspaces = s.planWorkspaceViews(ctx, rev.Config, pre.Actions)
		for _, w := range rep.Workspaces {
			if w.Action == "merge" {
				rep.Changes++
			}
		}
	}
	for _, e := range errs {
		rep.Errors = append(rep.Errors, e.Error())
	}
	return rep, errors.Join(errs...)
}

// planBuilds decides about every image as BuildAll would, with the same
// specs and the same decision (images.Decide), in build order. An image
// whose base would not be built (held, failing) is an error, as in a sync.
func (s *Site) planBuilds(ctx context.Context, rev *configrepo.Revision) []api.PlanBuild {
	b := s.imageBuilder(rev.Config)
	specs, specErrs := s.specs(rev)
	var out []api.PlanBuild
	at := map[string]int{}
	forBase := map[string]bool{} // rebuilt because a base is
	add := func(pb api.PlanBuild) {
		at[pb.Image] = len(out)
		out = append(out, pb)
	}
	for _, name := range rev.Config.ImageNames() {
		if err := specErrs[name]; err != nil {
			add(api.PlanBuild{Image: name, Courses: rev.Config.CoursesUsing(name), Action: string(images.ActionError), Reason: err.Error()})
		}
	}
	now := s.planAt()
	// Every image's builds in one engine call; should it fail, each image
	// lists its own and tells its error.
	var listed *images.Listing
	if len(specs) > 0 {
		listed, _ = b.List(ctx)
	}
	for _, spec := range specs {
		pb := api.PlanBuild{Image: spec.Image, Courses: rev.Config.CoursesUsing(spec.Image), Key: spec.Key,
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
		d, err := b.Decide(ctx, spec, images.DecideOptions{Now: now, Listing: listed})
		switch {
		case len(blocked) > 0:
			pb.Action, pb.Reason = string(images.ActionError), fmt.Sprintf("%v: %s", images.ErrBaseFailed, strings.Join(blocked, ", "))
		case err != nil:
			pb.Action, pb.Reason = string(images.ActionError), err.Error()
		default:
			pb.Action, pb.Reason = string(d.Action), d.Reason
			if d.Action == images.ActionBuild && len(rebuilt) > 0 {
				pb.Reason = fmt.Sprintf("base changed (%s rebuilt first)", strings.Join(rebuilt, ", "))
				forBase[pb.Image] = true
			}
		}
		add(pb)
	}
	cascade(out, forBase)
	return out
}

// cascade fills Cascade on each image rebuilt on its own account (not in
// forBase): the images rebuilt after it because they are built on it, in
// build order.
func cascade(builds []api.PlanBuild, forBase map[string]bool) {
	rebuilt := func(pb api.PlanBuild) bool { return pb.Action == string(images.ActionBuild) }
	for i := range builds {
		if !rebuilt(builds[i]) || forBase[builds[i].Image] {
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
func (s *Site) planPulls(_ context.Context, rev *configrepo.Revision) ([]api.PlanPull, error) {
	prev, err := gitwatch.ReadStatus(s.opts.Root)
	if err != nil {
		return nil, err
	}
	cfg := rev.Config
	var out []api.PlanPull
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
			out = append(out, api.PlanPull{Course: name, From: from, To: to})
		}
	}
	return out, errors.Join(errs...) // sorted: CourseNames is
}

// planAction is a container action as the plan document carries it.
func planAction(a reconcile.Action) api.PlanAction {
	return api.PlanAction{Kind: string(a.Kind), Course: a.Course, Student: a.Student, Container: a.Container, ID: a.ID,
		Reason: a.Reason, Held: string(a.Held), Guard: string(a.Guard), Warm: a.Warm, State: string(a.State), ImageID: a.ImageID, At: a.At}
}

// rejection is a rejected config commit as the plan document carries it
// (nil for none).
func rejection(r *configrepo.Rejection) *api.Rejection {
	if r == nil {
		return nil
	}
	out := &api.Rejection{Commit: api.Hash(r.Commit), At: r.At}
	if r.Problems != nil {
		out.Problems = make([]api.Problem, len(r.Problems))
	}
	for i, p := range r.Problems {
		out.Problems[i] = api.Problem(p)
	}
	return out
}
