package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
)

// Backend is what the server needs from the rest of the daemon. It answers
// with the API's documents (package api); the server never sees a Docker
// or git type. Methods may be called concurrently.
//
// Errors wrapping ErrNotFound, ErrInvalid, ErrConflict or ErrNotReady are
// answered with 404, 400, 409 or 503; context.DeadlineExceeded with 504;
// any other error with 500.
type Backend interface {
	// Ready returns nil once the daemon finished its first pass, and an
	// error saying what it waits for before that.
	Ready() error
	// Status returns the site's state for /api/status and the dashboard.
	Status(ctx context.Context) (api.Status, error)
	// History returns history records, newest first.
	History(ctx context.Context, q history.Query) ([]history.Record, error)
	// Plan returns what a sync would do now, for /api/plan.
	Plan(ctx context.Context) (api.Plan, error)
	// Spawn ensures a student's container (docs/design.md, "The decision table").
	Spawn(ctx context.Context, req api.SpawnRequest) (api.SpawnResult, error)
	// Sync asks for a pass (it does not wait for it) and returns the
	// courses it was asked for. An empty Course means every course.
	Sync(ctx context.Context, req api.SyncRequest) (api.SyncResult, error)
	// ConfirmPrune lets a held config revision that removes many courses
	// through. An empty Revision confirms whatever is held.
	ConfirmPrune(ctx context.Context, revision string) error
	// Reset gives back the course's version of one file of a student's
	// workspace, theirs kept beside it.
	Reset(ctx context.Context, req api.ResetRequest) (api.ResetResult, error)
	// Share makes a read-only HTML snapshot of a notebook of a student's
	// work folder, served by the front door at an unguessable address.
	Share(ctx context.Context, req api.ShareRequest) (api.ShareResult, error)
}

// HookHandler handles a webhook whose body has been read (bounded): it
// verifies the signature, maps the push to the site's courses and asks for
// a pass of them, in one call.
type HookHandler interface {
	// Push returns the courses a verified push asked a pass for; none
	// with a nil error means a verified event that triggers nothing (a
	// ping, a repo the site does not use). An error wrapping
	// ErrUnknownProvider is answered 404, one wrapping ErrInvalid (a
	// verified but unreadable payload) 400, ErrConflict (a replay) 409,
	// any other error 401.
	Push(ctx context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error)
}

// HookFunc adapts a function to HookHandler.
type HookFunc func(ctx context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error)

// Push calls f.
func (f HookFunc) Push(ctx context.Context, provider string, h http.Header, body []byte) (api.SyncResult, error) {
	return f(ctx, provider, h, body)
}

// Errors a Backend or HookHandler wraps to choose the HTTP status.
var (
	ErrNotFound        = errors.New("not found")
	ErrInvalid         = errors.New("invalid request")
	ErrConflict        = errors.New("conflict")
	ErrNotReady        = errors.New("not ready")
	ErrUnknownProvider = errors.New("unknown webhook provider")
)
