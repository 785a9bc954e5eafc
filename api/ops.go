package api

import "time"

// The operators' actions on one student's server: the last segment of
// POST /api/students/{course}/{student}/{action}, the CLI's command names.
const (
	StudentStop    = "stop"
	StudentRestart = "restart"
	StudentRemove  = "remove"
)

// StudentRequest is the (optional) body of POST
// /api/students/{course}/{student}/{action}.
type StudentRequest struct {
	// Force acts on a student whose server is active (the activity rule of
	// the container pass); without it the call is refused, with why.
	Force bool `json:"force,omitempty"`
	// Workspace, with remove, also moves the student's work for the course
	// to the trash (ROOT/state/trash), kept for the retention period; it
	// needs Yes, as the command line's --yes.
	Workspace bool `json:"workspace,omitempty"`
	Yes       bool `json:"yes,omitempty"`
	// By says who asks, for the history (the command line sends the
	// user's name); free text.
	By string `json:"by,omitempty"`
}

// StudentResult is what an action on one student's server did.
type StudentResult struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	Action  string `json:"action"`
	// Container is the container acted on; empty when there was none.
	Container string `json:"container,omitempty"`
	// Result is "stopped", "removed", "restarted", or "none" (no server
	// to stop or remove; a restart then starts one).
	Result string `json:"result"`
	// Forced is the activity --force overrode, when it did.
	Forced string `json:"forced,omitempty"`
	// Trash is where the workspace was moved (remove --workspace).
	Trash string `json:"trash,omitempty"`
	// Spawn is the server a restart handed back.
	Spawn *SpawnResult `json:"spawn,omitempty"`
}

// HoldRequest is the (optional) body of POST /api/courses/{course}/suspend
// and /resume.
type HoldRequest struct {
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
}

// Hold is one course on hold: no pulls, builds or retirements.
type Hold struct {
	Course string `json:"course"`
	// Source is "courses.yaml" (suspend: true) or "runtime" (nbh-sync
	// suspend).
	Source string    `json:"source"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// Holds is the answer of suspend, resume and GET /api/holds.
type Holds struct {
	Holds []Hold `json:"holds"`
}

// StudentView is one student's server for the admin view: GET
// /api/students?q=.
type StudentView struct {
	Course    string    `json:"course"`
	Student   string    `json:"student"`
	Container string    `json:"container"`
	State     string    `json:"state"`
	Port      int       `json:"port,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Active and Activity are the pass's activity rule (running servers
	// only; a search probes at most a few).
	Active   bool   `json:"active"`
	Activity string `json:"activity,omitempty"`
	// LastActivity is the server's last kernel, terminal or front-door
	// activity, when probed.
	LastActivity time.Time `json:"last_activity,omitzero"`
	// WorkspaceBytes is the size of ROOT/students/STUDENT/COURSE (-1 when
	// unreadable).
	WorkspaceBytes int64 `json:"workspace_bytes"`
}

// Students is the answer of GET /api/students.
type Students struct {
	Students []StudentView `json:"students"`
	// Truncated is set when more matched than were returned.
	Truncated bool `json:"truncated,omitempty"`
}
