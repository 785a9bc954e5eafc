package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/gitwatch/webhook"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/share"
	"github.com/nbhosting/nbh-sync/site"
	"github.com/nbhosting/nbh-sync/trigger"
	"github.com/nbhosting/nbh-sync/workspace"
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

func (b backend) Status(ctx context.Context) (api.Status, error) {
	st, err := b.d.site.Status(ctx)
	st.Schedules = b.d.sched.Next()
	return st, err
}

func (b backend) History(ctx context.Context, q history.Query) ([]history.Record, error) {
	return b.d.hist.Query(ctx, q)
}

func (b backend) Plan(ctx context.Context) (api.Plan, error) {
	rep, err := b.d.site.Plan(ctx, site.PassOptions{})
	var nc *site.NoConfigError
	if errors.As(err, &nc) {
		return api.Plan{}, fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	return rep, nil // a partial plan is still worth showing; errors are in the log
}

func (b backend) Spawn(ctx context.Context, req api.SpawnRequest) (api.SpawnResult, error) {
	var sp containers.Spawned
	var open string
	var err error
	if req.Path != "" {
		sp, open, err = b.d.site.Open(ctx, req.Course, req.Student, uidString(req.UID), req.Path)
	} else {
		sp, err = b.d.site.Spawn(ctx, req.Course, req.Student, uidString(req.UID))
	}
	if err != nil {
		return api.SpawnResult{}, spawnError(err)
	}
	b.d.usage.session(req.Course, req.Student)
	return api.SpawnResult{Name: sp.Name, ID: sp.ID, State: string(sp.State), Port: sp.Port, URL: sp.URL, Host: sp.Host, Token: sp.Token,
		Open: open, LaunchURL: b.d.launch(req.Course, req.Student, sp, open)}, nil
}

func (b backend) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResult, error) {
	kinds := trigger.Sync
	if len(req.Kinds) > 0 {
		kinds = 0
		for _, k := range req.Kinds {
			kk, err := trigger.ParseKind(k)
			if err != nil {
				return api.SyncResult{}, fmt.Errorf("%w: %w", server.ErrInvalid, err)
			}
			kinds |= kk
		}
	}
	cfg, err := b.d.site.Config(ctx)
	if err != nil {
		return api.SyncResult{}, fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	courses := cfg.CourseNames()
	if req.Course != "" {
		if _, ok := cfg.Courses[req.Course]; !ok {
			return api.SyncResult{}, fmt.Errorf("%w: no course %s", server.ErrNotFound, req.Course)
		}
		courses = []string{req.Course}
	}
	b.d.trigger(kinds, req.Source)
	return api.SyncResult{Courses: courses}, nil
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

// push handles a webhook: the signature by the path's provider, replays,
// the payload; then a pass when the push concerns the site, whose fetch
// backoff on the pushed repos ends at once.
func (d *daemon) push(ctx context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error) {
	p := webhook.Provider(provider)
	if !webhook.Known(p) {
		return api.SyncResult{}, fmt.Errorf("%w: %s", server.ErrUnknownProvider, provider)
	}
	// Only the signature the path's provider uses counts.
	if err := webhook.VerifyFor(p, h, body, d.secret); err != nil {
		return api.SyncResult{}, err
	}
	if d.replays.Seen(p, body, time.Now()) {
		return api.SyncResult{}, fmt.Errorf("%w: this signed delivery was received already (a replay)", server.ErrConflict)
	}
	push, err := webhook.Parse(p, h, body)
	if err != nil {
		return api.SyncResult{}, fmt.Errorf("%w: %w", server.ErrInvalid, err)
	}
	if !push.IsPush {
		return api.SyncResult{}, nil
	}
	courses, ours := d.site.Pushed(ctx, push.Keys())
	if !ours {
		d.log.InfoContext(ctx, "webhook push for a repo the site does not use", "provider", provider, "repos", push.Keys())
		return api.SyncResult{}, nil
	}
	d.trigger(trigger.Sync, "hook:"+provider)
	d.log.InfoContext(ctx, "webhook accepted", "provider", provider, "courses", courses)
	return api.SyncResult{Courses: courses}, nil
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

func (b backend) Reset(ctx context.Context, req api.ResetRequest) (api.ResetResult, error) {
	rep, err := b.d.site.Reset(ctx, req.Course, req.Student, req.Path)
	if err != nil {
		return api.ResetResult{}, workspaceError(err)
	}
	res := api.ResetResult{Path: req.Path, Backup: rep.Backup}
	for _, c := range rep.Conflicts {
		res.Beside = c.Beside
	}
	return res, nil
}

func (b backend) Share(ctx context.Context, req api.ShareRequest) (api.ShareResult, error) {
	token, size, err := b.d.site.Share(ctx, req.Course, req.Student, req.Path)
	if err != nil {
		return api.ShareResult{}, workspaceError(err)
	}
	u := share.Prefix + token
	if b.d.publicURL != nil {
		u = strings.TrimSuffix(b.d.publicURL.String(), "/") + u
	}
	return api.ShareResult{Token: token, URL: u, Size: size}, nil
}

// workspaceError maps the errors of workspace operations to the API's.
func workspaceError(err error) error {
	switch {
	case errors.Is(err, workspace.ErrBadPath), errors.Is(err, naming.ErrBadStudent):
		return fmt.Errorf("%w: %w", server.ErrInvalid, err)
	case errors.Is(err, manifest.ErrUnknownCourse), errors.Is(err, workspace.ErrNotInCourse),
		errors.Is(err, workspace.ErrNotInitialized), errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", server.ErrNotFound, err)
	case errors.Is(err, workspace.ErrBusy), errors.Is(err, workspace.ErrInTheWay), errors.Is(err, workspace.ErrBadMode),
		errors.Is(err, containers.ErrExecUnsupported):
		return fmt.Errorf("%w: %w", server.ErrConflict, err)
	}
	return spawnError(err)
}
