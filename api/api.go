// Package api holds the JSON documents of the daemon's HTTP API: what
// package site (and the daemon) produce, package server serves, and the
// command line and the dashboard read. Each type says which endpoint
// carries it. The field names are a contract with scripts: they never
// change.
//
// The package imports only the standard library and the leaf packages
// whose records the API carries as they are (history, livelog).
package api

import (
	"encoding/hex"

	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/livelog"
)

// Error is the body of every answer with a status of 400 or more.
type Error struct {
	Error string `json:"error"`
}

// Ack is the answer of GET /healthz ("ok"), GET /readyz ("ready") and
// POST /api/confirm-prune ("confirmed").
type Ack struct {
	Status string `json:"status"`
}

// History is the answer of GET /api/history: records of the history
// store, newest first.
type History struct {
	Records []history.Record `json:"records"`
}

// RunningBuilds is the answer of GET /api/builds/running: the builds whose
// log GET /api/builds/log/IMAGE follows now.
type RunningBuilds struct {
	Builds []livelog.Build `json:"builds"`
}

// SpawnRequest is the body of POST /api/spawn: a student's container, to
// be ensured.
type SpawnRequest struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	// UID is the uid to run as; nil means the host account's.
	UID *int `json:"uid,omitempty"`
	// Path, when set, is a notebook to open (a deep link), relative to
	// the server's root: week1/intro.ipynb. Clean, with no "..".
	Path string `json:"path,omitempty"`
}

// SpawnResult is the answer of POST /api/spawn: the container handed out.
type SpawnResult struct {
	Name  string `json:"name"`
	State string `json:"state"` // existing, started, created
	Port  int    `json:"port"`
	URL   string `json:"url"`
	// Token is the server's Jupyter token (open URL?token=…).
	Token string `json:"token,omitempty"`
	// Open, for a request with a path, is where that notebook opens under
	// URL (and the launch URL's prefix), in the course's notebook
	// interface: notebooks/PATH or lab/tree/PATH.
	Open string `json:"open,omitempty"`
	// LaunchURL, when the daemon runs the front door, is where to send
	// the student's browser: the server's prefix with a ticket that works
	// once, for a minute.
	LaunchURL string `json:"launch_url,omitempty"`
}

// SyncRequest is the body of POST /api/sync (optional: ?course= works
// too): a pass to queue.
type SyncRequest struct {
	// Course limits the pass to one course ("" for all).
	Course string `json:"course,omitempty"`
	// Kinds are pass kinds ("pull", "reconcile", "rebuild", "sync");
	// empty means a full sync.
	Kinds []string `json:"kinds,omitempty"`
	// Source says who asked: "api", "confirm-prune", ... The server sets
	// it; a caller's value is overwritten.
	Source string `json:"source"`
}

// SyncResult is the answer of POST /api/sync and of a webhook
// (POST /hooks/PROVIDER): the courses a pass was queued for.
type SyncResult struct {
	Courses []string `json:"courses"`
}

// ConfirmPruneRequest is the body of POST /api/confirm-prune (optional).
type ConfirmPruneRequest struct {
	// Revision is the config revision the caller confirms; empty confirms
	// whatever is held.
	Revision string `json:"revision"`
}

// DemoRequest is the body of POST /api/demo, the dashboard's "open a demo
// student": the course to open.
type DemoRequest struct {
	Course string `json:"course"`
}

// DemoResult is the answer of POST /api/demo: the demo student's
// container and the launch URL that lets the browser in.
type DemoResult struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	LaunchURL string `json:"launch_url"`
}

// Hash is a git commit as the plan document carries it: an array of its 20
// bytes (the form it always had there, which scripts may read).
type Hash [20]byte

// String returns the commit's hexadecimal form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }
