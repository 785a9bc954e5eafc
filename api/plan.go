package api

import "time"

// Plan is what a sync would do now: the answer of GET /api/plan and the
// document of `nbh-sync plan --json`.
type Plan struct {
	Config  PlanConfig   `json:"config"`
	Pulls   []PlanPull   `json:"pulls"`
	Builds  []PlanBuild  `json:"builds"`
	Actions []PlanAction `json:"actions"`
	// Workspaces are the students' workspaces and whether the pass would
	// merge the course's new commit into them.
	Workspaces []PlanWorkspace `json:"workspaces"`
	// Changes counts the pulls, builds, retirements and merges the sync
	// would make.
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
	Change   string     `json:"change"`
	Rejected *Rejection `json:"rejected,omitempty"`
}

// Rejection is a config commit that failed validation and is not applied.
type Rejection struct {
	Commit   Hash      `json:"commit"`
	Problems []Problem `json:"problems"`
	At       time.Time `json:"at"`
}

// Problem is one problem validation found in a config commit. It has the
// fields of manifest.Problem, in the same order, so that each converts to
// the other: the command line prints one with manifest.Problem's String.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	// Path is the field's path, e.g. courses.ds-handbook.idle.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Warning bool   `json:"warning,omitempty"`
}

// PlanPull is a course whose checkout would move.
type PlanPull struct {
	Course string `json:"course"`
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	// Guard is "suspended" when the course is on hold: the pull waits.
	Guard string `json:"guard,omitempty"`
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
	// Action is what the build decision says — "build", "tag" (I:latest
	// moves to a passed build), "none", "pin", "hold" (failed recently) —
	// or "error" (the spec cannot be made, or a base cannot be built: see
	// Reason).
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Cascade, on an image built first, lists the images rebuilt after it
	// because they are built on it (directly or not), in build order.
	Cascade []string `json:"cascade,omitempty"`
	// Guard is "suspended" when every course of the image is on hold: the
	// build Action names waits (Reason says so).
	Guard string `json:"guard,omitempty"`
}

// PlanAction is one container and what the container pass would do about
// it, and why.
type PlanAction struct {
	// Kind is "keep", "report-stale" (kept, on a stale image), "stop",
	// "remove", "warm" (start an expected student's server for a warm
	// window) or "hold" (a guard withheld a stop, remove or warm: Held
	// says which, Guard which guard: "freeze", "mass-prune",
	// "retire-limit", "suspended", "warm", "warm-max", "warm-pace").
	Kind      string `json:"kind"`
	Course    string `json:"course"`
	Student   string `json:"student"`
	Container string `json:"container"`
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	Held      string `json:"held,omitempty"`
	Guard     string `json:"guard,omitempty"`
	// Warm marks a warm-up, or a warm server kept unvisited in its window.
	Warm bool `json:"warm,omitempty"`
	// State and ImageID are what the plan saw of the container.
	State   string `json:"state"`
	ImageID string `json:"image_id"`
	// At is the time of the plan.
	At time.Time `json:"at"`
}

// PlanWorkspace is one student's workspace (their own copy of the course)
// and what the container pass would do about it.
type PlanWorkspace struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	// Mode is copy, lazy or none, as the workspace was made.
	Mode string `json:"mode,omitempty"`
	// Commit is the course commit the workspace is at; To the course's
	// commit now, when the workspace is behind it.
	Commit string `json:"commit,omitempty"`
	To     string `json:"to,omitempty"`
	// Action is "merge" (behind, and the student's server is not in use),
	// "wait" (behind, but the server is in use: merged once idle) or
	// "none" (up to date); Reason says why.
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Last is the last operation recorded on the workspace, if any.
	Last *WorkspaceEvent `json:"last,omitempty"`
}

// WorkspaceEvent is an operation recorded on a workspace.
type WorkspaceEvent struct {
	Time time.Time `json:"time"`
	// Op is init, merge, reset or share; Result ok, conflicts, busy or
	// failed; Message what changed (or the error).
	Op      string `json:"op"`
	Commit  string `json:"commit,omitempty"`
	Result  string `json:"result"`
	Message string `json:"message,omitempty"`
}
