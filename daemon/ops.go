package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/proxy"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
	"github.com/nbhosting/nbh-sync/trigger"
)

// ops maps the site's operator actions onto the HTTP server's Ops.
type ops struct{ d *daemon }

var _ server.Ops = ops{}

func (o ops) Student(ctx context.Context, course, student, action string, req api.StudentRequest) (api.StudentResult, error) {
	rep, err := o.d.site.Student(ctx, course, student, action, site.StudentOptions{Force: req.Force, Workspace: req.Workspace, By: "api " + req.By})
	if err != nil {
		return rep.StudentResult, opsError(err)
	}
	if rep.Spawned != nil && o.d.proxy != nil {
		// The front door routes the student to the new server at once.
		o.d.proxy.Routes().Set(spawnedRoute(course, student, *rep.Spawned))
	}
	return rep.StudentResult, nil
}

func (o ops) Students(ctx context.Context, q string) (api.Students, error) {
	res, err := o.d.site.Students(ctx, q)
	return res, opsError(err)
}

func (o ops) Suspend(ctx context.Context, course string, req api.HoldRequest) (api.Holds, error) {
	hs, err := o.d.site.Suspend(ctx, course, "api "+req.By, req.Reason)
	return api.Holds{Holds: hs}, opsError(err)
}

func (o ops) Resume(ctx context.Context, course string, req api.HoldRequest) (api.Holds, error) {
	hs, err := o.d.site.Resume(ctx, course, "api "+req.By)
	if err == nil {
		// What the hold kept back (pulls, builds, retirements) goes now.
		o.d.trigger(trigger.Sync, "resume:"+course)
	}
	return api.Holds{Holds: hs}, opsError(err)
}

func (o ops) Holds(ctx context.Context) (api.Holds, error) {
	hs, err := o.d.site.Holds(ctx)
	return api.Holds{Holds: hs}, opsError(err)
}

// opsError maps an operator action's failure onto the HTTP status the API
// answers.
func opsError(err error) error {
	if err == nil {
		return nil
	}
	var active *site.ActiveError
	switch {
	case errors.As(err, &active), errors.Is(err, site.ErrHeldInConfig), errors.Is(err, site.ErrNotHeld):
		return fmt.Errorf("%w: %w", server.ErrConflict, err)
	case errors.Is(err, site.ErrBadAction):
		return fmt.Errorf("%w: %w", server.ErrInvalid, err)
	case errors.Is(err, containers.ErrNotFound):
		return fmt.Errorf("%w: %w", server.ErrNotFound, err)
	}
	return spawnError(err)
}

// frontDoorRestarter is the students' own "restart my server" (the front
// door's proxy.Restarter): forced, since the student asking is the
// activity.
type frontDoorRestarter struct{ d *daemon }

func (f frontDoorRestarter) Restart(ctx context.Context, course, student string) (proxy.Route, error) {
	rep, err := f.d.site.Student(ctx, course, student, api.StudentRestart, site.StudentOptions{Force: true, By: "the student, through the front door"})
	if err != nil {
		return proxy.Route{}, err
	}
	return spawnedRoute(course, student, *rep.Spawned), nil
}
