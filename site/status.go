package site

import (
	"context"
	"errors"
	"fmt"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/dockerfile"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// recentLimit is how many builds and actions status shows.
const recentLimit = 20

// Status reads the site's state without network or change: the config in
// force, each course's checkout, each image's current build, the
// containers (one list call), recent builds and actions, and errors. It is
// the document of `nbh-sync status --json`, /api/status and the dashboard.
func (s *Site) Status(ctx context.Context) (api.Status, error) {
	st := api.Status{Courses: []api.CourseView{}, Images: []api.ImageView{}, Builds: []api.BuildView{},
		Actions: []api.ActionView{}, Errors: []string{}}
	s.mu.Lock()
	rev, rejected := s.rev, s.rejected
	s.mu.Unlock()
	if rev == nil {
		rev = s.loader.Restored()
	}
	if rejected == nil {
		_, _, rejected, _ = configrepo.ReadState(s.opts.Root)
	}
	if rejected != nil && (rev == nil || rejected.At.After(rev.At)) {
		st.ConfigError = fmt.Sprintf("commit %s rejected:\n%s", shortid.Of(rejected.Commit.String()), problems(rejected))
		st.Errors = append(st.Errors, "config "+st.ConfigError)
	}
	if rev == nil {
		st.Errors = append(st.Errors, "no valid config applied yet: run nbh-sync sync")
		return st, nil
	}
	st.Revision = rev.Commit.String()
	cfg := rev.Config
	last := s.lastPass.get()
	if last != nil {
		st.LastPass = last.At.Add(last.Duration)
		if last.Error != "" {
			st.Errors = append(st.Errors, "last pass: "+last.Error)
		}
		st.HeldPrune = heldPrune(last.Actions)
	}

	pulls, err := gitwatch.ReadStatus(s.opts.Root)
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
	}
	// One engine error is enough to say the engine is down.
	engineDown := false
	engineErr := func(err error) {
		if err != nil && !engineDown {
			engineDown = true
			st.Errors = append(st.Errors, "engine: "+err.Error())
		}
	}
	mgr, err := s.containersOf(cfg)
	if err != nil {
		engineErr(err)
		mgr = s.ctrs
	}
	// The containers — the engine's longest answer — are listed while the
	// images are looked up.
	d := reconcile.NewDesired(cfg, nil)
	d.Had = s.known.update(ctx, cfg, false)
	type listed struct {
		ctrs []containers.Container
		err  error
	}
	lists := make(chan listed, 1)
	s.negotiate(ctx)
	go func() {
		ctrs, err := mgr.List(ctx, d.Adopts)
		lists <- listed{ctrs, err}
	}()
	current, err := mgr.CurrentImages(ctx, cfg.ImageNames())
	engineErr(err)

	b := s.imageBuilder(cfg)
	// Every image's builds in one engine call; should it fail, each image
	// lists its own and tells its error.
	var builds *images.Listing
	if len(cfg.ImageNames()) > 0 {
		builds, _ = b.List(ctx)
	}
	keys := map[string]string{}
	imageErrs := map[string]string{}
	specs, _ := s.specs(rev) // for the bases; errors show as failures
	bases, froms := map[string]string{}, map[string]string{}
	for _, sp := range specs {
		bases[sp.Image] = sp.Base
		for _, f := range dockerfile.Froms(sp.Dockerfile) {
			if f.Final && sp.Base == "" {
				froms[sp.Image] = f.Ref
			}
		}
	}
	for _, name := range cfg.ImageNames() {
		v := api.ImageView{Name: name, Base: bases[name], From: froms[name], Courses: cfg.CoursesUsing(name), Pinned: cfg.Images[name].Pin != ""}
		cur, err := b.CurrentIn(ctx, name, builds)
		switch {
		case err == nil:
			v.BuildKey, v.Source, v.Built = cur.Key, cur.Source, cur.Created
			if len(cur.Key) >= images.ShortKeyLen {
				v.Tag = name + ":" + cur.Key[:images.ShortKeyLen]
			}
			keys[name] = cur.Key
		case errors.Is(err, images.ErrNoImage):
			v.Error = "not built yet"
		default:
			v.Error = err.Error()
		}
		if f, ok := b.Failure(name); ok {
			v.Error = f.Error
			v.Failed = &api.FailedBuild{BuildKey: f.Key, Stage: string(f.Stage), Time: f.At, Error: f.Error, LogTail: f.LogTail}
			imageErrs[name] = f.Error
			st.Errors = append(st.Errors, f.Error)
		}
		st.Images = append(st.Images, v)
	}

	l := <-lists
	ctrs := l.ctrs
	engineErr(l.err)
	wsViews := s.workspaceViews(ctx, cfg)
	susp := s.suspensions(cfg)
	for _, name := range cfg.CourseNames() {
		co := cfg.Courses[name]
		v := api.CourseView{Workspaces: wsViews[name], Name: name, Repo: gitwatch.RedactURL(co.Repo), Branch: co.Branch, Image: co.ImageOf(),
			BuildKey: keys[co.ImageOf()], Archived: co.Archived, ImageError: imageErrs[co.ImageOf()], Suspended: susp[name]}
		if p, ok := pulls.Course(name); ok {
			v.Commit, v.Error, v.Checked, v.Fetched = p.Commit.String(), p.Error, p.CheckedAt, p.FetchedAt
			if p.Commit.IsZero() {
				v.Commit = ""
			}
			if p.Error != "" {
				st.Errors = append(st.Errors, fmt.Sprintf("course %s: %s", name, p.Error))
			}
		}
		v.NextWarm = reconcile.NextWarm(co, s.planAt())
		if last != nil {
			v.Warm, v.WarmHeld, v.WarmPending = warmCounts(last, name)
		}
		want := reconcile.NewCourseState(co, current[co.ImageOf()])
		for _, c := range ctrs {
			if c.Course != name {
				continue
			}
			v.Containers++
			if c.State == "running" {
				v.Running++
			}
			if want.Stale(c) == "" {
				v.OnCurrent++
			} else {
				v.Stale++
			}
		}
		st.Courses = append(st.Courses, v)
	}

	if s.opts.History != nil {
		recs, err := s.opts.History.Query(ctx, history.Query{Kinds: []history.Kind{history.KindBuild}, Limit: recentLimit, WithLog: true})
		if err == nil {
			st.Builds = api.BuildViews(recs)
		}
		recs, err = s.opts.History.Query(ctx, history.Query{Kinds: []history.Kind{history.KindAction}, Limit: recentLimit})
		if err == nil {
			st.Actions = api.ActionViews(recs)
		}
	}
	return st, nil
}

// warmCounts says, from a pass, how many servers of course were warm after
// it (kept unvisited in their window, or warmed up by it), how many
// warm-ups a cap held back and how many were left to the next pass.
func warmCounts(p *PassReport, course string) (warm, held, pending int) {
	for _, a := range p.Actions {
		switch {
		case a.Course != course:
		case a.Kind == reconcile.Hold && a.Guard == reconcile.GuardWarmMax:
			held++
		case a.Kind == reconcile.Hold && a.Guard == reconcile.GuardWarmPace:
			pending++
		case a.Warm && a.Kind != reconcile.WarmUp:
			warm++
		}
	}
	for _, o := range p.Outcomes {
		if o.Action.Course == course && o.Action.Kind == reconcile.WarmUp && o.Done {
			warm++
		}
	}
	return warm, held, pending
}

// heldPrune describes the mass-prune guard's hold in a plan, if any.
func heldPrune(actions []reconcile.Action) string {
	for _, a := range actions {
		if a.Kind == reconcile.Hold && a.Guard == reconcile.GuardMassPrune {
			return a.Reason
		}
	}
	return ""
}
