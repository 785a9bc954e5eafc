package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/gitwatch/webhook"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
	"github.com/nbhosting/nbh-sync/trigger"
)

// backend maps the site onto the HTTP server's Backend.
type backend struct{ d *daemon }

var _ server.Backend = backend{}

func (b backend) Ready() error {
	if !b.d.ready.Load() {
		return fmt.Errorf("%w: the first pass has not finished", server.ErrNotReady)
	}
	return nil
}

func (b backend) Status(ctx context.Context) (server.Status, error) {
	st, err := b.d.site.Status(ctx)
	st.Schedules = b.d.sched.Next()
	return st, err
}

func (b backend) History(ctx context.Context, q history.Query) ([]history.Record, error) {
	return b.d.hist.Query(ctx, q)
}

func (b backend) Plan(ctx context.Context) (any, error) {
	rep, err := b.d.site.Plan(ctx, site.PassOptions{})
	var nc *site.NoConfigError
	if errors.As(err, &nc) {
		return nil, fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	return rep, nil // a partial plan is still worth showing; errors are in the log
}

func (b backend) Spawn(ctx context.Context, req server.SpawnRequest) (server.SpawnResult, error) {
	sp, err := b.d.site.Spawn(ctx, req.Course, req.Student, uidString(req.UID))
	if err != nil {
		return server.SpawnResult{}, spawnError(err)
	}
	return server.SpawnResult{Name: sp.Name, State: string(sp.State), Port: sp.Port, URL: sp.URL, Token: sp.Token,
		LaunchURL: b.d.launch(req.Course, req.Student, sp)}, nil
}

func (b backend) Sync(ctx context.Context, req server.SyncRequest) (server.SyncResult, error) {
	kinds := trigger.Sync
	if len(req.Kinds) > 0 {
		kinds = 0
		for _, k := range req.Kinds {
			kk, err := trigger.ParseKind(k)
			if err != nil {
				return server.SyncResult{}, fmt.Errorf("%w: %w", server.ErrInvalid, err)
			}
			kinds |= kk
		}
	}
	cfg, err := b.d.site.Config(ctx)
	if err != nil {
		return server.SyncResult{}, fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	courses := cfg.CourseNames()
	if req.Course != "" {
		if _, ok := cfg.Courses[req.Course]; !ok {
			return server.SyncResult{}, fmt.Errorf("%w: no course %s", server.ErrNotFound, req.Course)
		}
		courses = []string{req.Course}
	}
	if len(req.Repos) > 0 { // a webhook: the courses of the pushed repos
		courses = coursesOf(b.d.site.Location().URL, cfg, req.Repos)
	}
	b.d.trigger(kinds, req.Source)
	return server.SyncResult{Courses: courses}, nil
}

func (b backend) ConfirmPrune(ctx context.Context, revision string) error {
	st, err := b.d.site.Status(ctx)
	if err != nil {
		return err
	}
	if revision != "" && revision != st.Revision {
		return fmt.Errorf("%w: revision %s is not the one in force (%s)", server.ErrConflict, revision, st.Revision)
	}
	b.d.allowPrune.Store(true)
	b.d.trigger(trigger.Reconcile, "confirm-prune")
	return nil
}

// verifyHook checks a webhook and returns the site's repos it pushed to; a
// push to a repo the site does not use triggers nothing.
func (d *daemon) verifyHook(ctx context.Context, provider string, r *http.Request, body []byte) ([]string, error) {
	p := webhook.Provider(provider)
	if !webhook.Known(p) {
		return nil, fmt.Errorf("%w: %s", server.ErrUnknownProvider, provider)
	}
	// Only the signature the path's provider uses counts.
	if err := webhook.VerifyFor(p, r.Header, body, d.secret); err != nil {
		return nil, err
	}
	if d.replays.Seen(p, body, time.Now()) {
		return nil, fmt.Errorf("%w: this signed delivery was received already (a replay)", server.ErrConflict)
	}
	push, err := webhook.Parse(p, r.Header, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", server.ErrInvalid, err)
	}
	if !push.IsPush {
		return nil, nil
	}
	cfg, err := d.site.Config(ctx)
	if err != nil {
		return nil, nil
	}
	var repos []string
	keys := push.Keys()
	consider := func(url string) {
		if slices.Contains(keys, gitwatch.NormalizeURL(url)) && !slices.Contains(repos, url) {
			repos = append(repos, url)
			d.site.Mirrors().Reset(url) // a push ends any backoff at once
		}
	}
	consider(d.site.Location().URL)
	for _, name := range cfg.CourseNames() {
		if co := cfg.Courses[name]; co.Repo != "." {
			consider(co.Repo)
		}
	}
	if len(repos) == 0 {
		d.log.Info("webhook push for a repo the site does not use", "provider", provider, "repos", keys)
	}
	return repos, nil
}

// hookHeaders checks a webhook's signature header before its body is
// read.
func hookHeaders(provider string, h http.Header) error {
	p := webhook.Provider(provider)
	if !webhook.Known(p) {
		return fmt.Errorf("%w: %s", server.ErrUnknownProvider, provider)
	}
	return webhook.CheckHeader(p, h)
}

// coursesOf returns the courses whose repo is one of repos (those in the
// config repo when it is one of them).
func coursesOf(configURL string, cfg *manifest.Config, repos []string) []string {
	var out []string
	for _, name := range cfg.CourseNames() {
		repo := cfg.Courses[name].Repo
		if repo == "." {
			repo = configURL
		}
		if slices.Contains(repos, repo) {
			out = append(out, name)
		}
	}
	return out
}
