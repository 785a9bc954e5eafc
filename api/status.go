package api

import (
	"time"

	"github.com/nbhosting/nbh-sync/history"
)

// Status is the state of the site: the answer of GET /api/status, the
// document of `nbh-sync status --json`, and what the dashboard shows.
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

// CourseView is one course of a Status.
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
	// Suspended says why the course is on hold (no pulls, builds or
	// retirements; students still served), when it is.
	Suspended string `json:"suspended,omitempty"`
	// Containers counts the course's containers; OnCurrent those on the
	// course's current image, Stale the others; Running those running.
	Containers int `json:"containers"`
	OnCurrent  int `json:"on_current"`
	Stale      int `json:"stale"`
	Running    int `json:"running"`
	// Warm counts the servers warm at the last pass (started or kept for
	// a warm window, not visited yet); WarmHeld the warm-ups a cap (the
	// window's max, the site's warm-max) held back; WarmPending those left
	// to the next pass (beyond the warm-ups of one pass); NextWarm is the
	// next start of one of the course's warm windows.
	Warm        int       `json:"warm,omitempty"`
	WarmHeld    int       `json:"warm_held,omitempty"`
	WarmPending int       `json:"warm_pending,omitempty"`
	NextWarm    time.Time `json:"next_warm,omitzero"`
	// Error is the course's last error, if any.
	Error string `json:"error,omitempty"`
	// ImageError says why the course's image failed to build, if it did
	// (its previous build, if any, still serves).
	ImageError string `json:"image_error,omitempty"`
	// Workspaces sums up the students' workspaces of the course.
	Workspaces WorkspacesView `json:"workspaces"`
}

// WorkspacesView sums up the workspaces of one course.
type WorkspacesView struct {
	// Count is the number of workspaces; Behind those not yet at the
	// course's commit (merged once their student is idle).
	Count  int `json:"count"`
	Behind int `json:"behind"`
	// Conflicts counts the workspaces whose last merge put a course
	// version beside a student's (no conflict markers: both files kept).
	Conflicts int `json:"conflicts"`
	// LastMerge is the course's latest merge, with its student.
	LastMerge *WorkspaceMerge `json:"last_merge,omitempty"`
}

// WorkspaceMerge is one merge of a student's workspace.
type WorkspaceMerge struct {
	Student string `json:"student"`
	WorkspaceEvent
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

// ImageView is one image of a Status.
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

// FailedBuild is an image's last failed build, in an ImageView.
type FailedBuild struct {
	BuildKey string    `json:"build_key,omitempty"`
	Stage    string    `json:"stage"`
	Time     time.Time `json:"time"`
	Error    string    `json:"error"`
	LogTail  string    `json:"log_tail,omitempty"`
}

// BuildView is one recent build of a Status, with its (capped) log: a
// build record of the history store (GET /api/history?kind=build has the
// whole record) without the fields that do not apply to builds.
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

// ActionView is one recent container action of a Status and its reason.
type ActionView struct {
	Kind    string    `json:"kind"`
	Course  string    `json:"course"`
	Student string    `json:"student,omitempty"`
	Reason  string    `json:"reason"`
	Result  string    `json:"result,omitempty"`
	Time    time.Time `json:"time"`
}

// BuildViews turns build records of the history store (queried WithLog)
// into the builds of a Status; records of other kinds are left out.
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
// of a Status: a record's Action is the view's Kind, its Message the
// Reason. Records of other kinds are left out.
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
