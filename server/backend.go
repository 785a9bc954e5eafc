package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nbhosting/nbh-sync/history"
)

// Backend is what the server needs from the rest of the daemon. The daemon
// maps its parts onto these views; the server never sees a Docker or git
// type. Methods may be called concurrently.
//
// Errors wrapping ErrNotFound, ErrInvalid, ErrConflict or ErrNotReady are
// answered with 404, 400, 409 or 503; context.DeadlineExceeded with 504;
// any other error with 500.
type Backend interface {
	// Ready returns nil once the daemon finished its first pass, and an
	// error saying what it waits for before that.
	Ready() error
	// Status returns the site's state for /api/status and the dashboard.
	Status(ctx context.Context) (Status, error)
	// History returns history records, newest first.
	History(ctx context.Context, q history.Query) ([]history.Record, error)
	// Plan returns what a sync would do now, as the JSON document that
	// `nbh-sync plan --json` prints.
	Plan(ctx context.Context) (any, error)
	// Spawn ensures a student's container (docs/design.md, "The decision table").
	Spawn(ctx context.Context, req SpawnRequest) (SpawnResult, error)
	// Sync asks for a pass (it does not wait for it) and returns the
	// courses it was asked for. An empty Course means every course.
	Sync(ctx context.Context, req SyncRequest) (SyncResult, error)
	// ConfirmPrune lets a held config revision that removes many courses
	// through. An empty Revision confirms whatever is held.
	ConfirmPrune(ctx context.Context, revision string) error
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
	Push(ctx context.Context, provider string, h http.Header, body []byte) (SyncResult, error)
}

// HookFunc adapts a function to HookHandler.
type HookFunc func(ctx context.Context, provider string, h http.Header, body []byte) (SyncResult, error)

// Push calls f.
func (f HookFunc) Push(ctx context.Context, provider string, h http.Header, body []byte) (SyncResult, error) {
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

// Status is the state of the site.
type Status struct {
	// Revision is the config repo commit applied; ConfigError says why a
	// newer one was rejected, if it was.
	Revision    string       `json:"revision,omitempty"`
	ConfigError string       `json:"config_error,omitempty"`
	Courses     []CourseView `json:"courses"`
	Images      []ImageView  `json:"images"`
	// Builds and Actions are recent ones, newest first.
	Builds  []BuildView  `json:"builds"`
	Actions []ActionView `json:"actions"`
	Errors  []string     `json:"errors"`
	// LastPass is when the last pass ended (zero before the first).
	LastPass time.Time `json:"last_pass"`
	// Schedules says when each cron schedule fires next.
	Schedules map[string]time.Time `json:"schedules,omitempty"`
	// HeldPrune describes a config revision held until confirmed.
	HeldPrune string `json:"held_prune,omitempty"`
}

// CourseView is one course as the dashboard shows it.
type CourseView struct {
	Name   string `json:"name"`
	Repo   string `json:"repo,omitempty"`
	Branch string `json:"branch"`
	Commit string `json:"commit,omitempty"`
	// Checked is the last successful check of the remote's head; Fetched
	// the last time it brought new commits.
	Checked  time.Time `json:"checked,omitzero"`
	Fetched  time.Time `json:"fetched,omitzero"`
	Image    string    `json:"image"`
	BuildKey string    `json:"build_key,omitempty"`
	Archived bool      `json:"archived,omitempty"`
	// Containers counts the course's containers; OnCurrent those on the
	// course's current image, Stale the others; Running those running.
	Containers int `json:"containers"`
	OnCurrent  int `json:"on_current"`
	Stale      int `json:"stale"`
	Running    int `json:"running"`
	// Error is the course's last error, if any.
	Error string `json:"error,omitempty"`
	// ImageError says why the course's image failed to build, if it did
	// (its previous build, if any, still serves).
	ImageError string `json:"image_error,omitempty"`
}

// Rollout returns the share (0..100) of containers on the current image;
// a course without containers is fully rolled out.
func (c CourseView) Rollout() int {
	if c.Containers <= 0 {
		return 100
	}
	p := c.OnCurrent * 100 / c.Containers
	return max(0, min(100, p))
}

// ImageView is one image.
type ImageView struct {
	Name string `json:"name"`
	// Base is the image of this site it is built FROM, if any; From, when
	// it is built on no image of the site, the outside image it is built
	// FROM, as its Dockerfile writes it (a registry's, or one made on this
	// host).
	Base     string    `json:"base,omitempty"`
	From     string    `json:"from,omitempty"`
	BuildKey string    `json:"build_key,omitempty"`
	Tag      string    `json:"tag,omitempty"`
	Source   string    `json:"source,omitempty"`
	Pinned   bool      `json:"pinned,omitempty"`
	Built    time.Time `json:"built,omitzero"`
	Courses  []string  `json:"courses,omitempty"`
	Error    string    `json:"error,omitempty"`
	// Failed describes the last failed build when it is newer than what
	// serves: which stage, when, and the end of its log.
	Failed *FailedBuild `json:"failed,omitempty"`
}

// FailedBuild is an image's last failed build.
type FailedBuild struct {
	BuildKey string    `json:"build_key,omitempty"`
	Stage    string    `json:"stage"`
	Time     time.Time `json:"time"`
	Error    string    `json:"error"`
	LogTail  string    `json:"log_tail,omitempty"`
}

// BuildView is one build, with its (capped) log.
type BuildView struct {
	Image    string        `json:"image"`
	BuildKey string        `json:"build_key,omitempty"`
	Commit   string        `json:"commit,omitempty"`
	Result   string        `json:"result"`
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Message  string        `json:"message,omitempty"`
	Log      string        `json:"log,omitempty"`
}

// ActionView is one container action and its reason.
type ActionView struct {
	Kind    string    `json:"kind"`
	Course  string    `json:"course"`
	Student string    `json:"student,omitempty"`
	Reason  string    `json:"reason"`
	Result  string    `json:"result,omitempty"`
	Time    time.Time `json:"time"`
}

// SpawnRequest asks for a student's container.
type SpawnRequest struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	// UID is the uid to run as; nil means the host account's.
	UID *int `json:"uid,omitempty"`
}

// SpawnResult is the container handed out.
type SpawnResult struct {
	Name  string `json:"name"`
	State string `json:"state"` // existing, started, created
	Port  int    `json:"port"`
	URL   string `json:"url"`
	// Token is the server's Jupyter token (open URL?token=…).
	Token string `json:"token,omitempty"`
	// LaunchURL, when the daemon runs the front door, is where to send
	// the student's browser: the server's prefix with a ticket that works
	// once, for a minute.
	LaunchURL string `json:"launch_url,omitempty"`
}

// SyncRequest asks for a pass.
type SyncRequest struct {
	// Course limits the pass to one course ("" for all).
	Course string `json:"course,omitempty"`
	// Kinds are pass kinds ("pull", "reconcile", "rebuild", "sync");
	// empty means a full sync.
	Kinds []string `json:"kinds,omitempty"`
	// Source says who asked: "api", "confirm-prune", ...
	Source string `json:"source"`
}

// SyncResult says what was queued.
type SyncResult struct {
	Courses []string `json:"courses"`
}

// BuildViews turns build records of the history store (queried WithLog)
// into the builds of a Status.
func BuildViews(recs []history.Record) []BuildView {
	out := []BuildView{}
	for _, r := range recs {
		if r.Kind != history.KindBuild {
			continue
		}
		out = append(out, BuildView{Image: r.Image, BuildKey: r.BuildKey, Commit: r.Commit, Result: r.Result,
			Time: r.Time, Duration: r.Duration, Message: r.Message, Log: r.Log})
	}
	return out
}

// ActionViews turns action records of the history store into the actions
// of a Status.
func ActionViews(recs []history.Record) []ActionView {
	out := []ActionView{}
	for _, r := range recs {
		if r.Kind != history.KindAction {
			continue
		}
		out = append(out, ActionView{Kind: r.Action, Course: r.Course, Student: r.Student, Reason: r.Message,
			Result: r.Result, Time: r.Time})
	}
	return out
}
