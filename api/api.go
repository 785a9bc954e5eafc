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
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/internal/githash"
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
	Name string `json:"name"`
	// ID is the engine's ID of the container (on Swarm, of the service).
	ID    string `json:"id"`
	State string `json:"state"` // existing, started, created
	Port  int    `json:"port"`
	URL   string `json:"url"`
	// Host is the node the server runs on, when the engine places
	// containers on several hosts (Swarm).
	Host string `json:"host,omitempty"`
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

// ResetRequest is the body of POST /api/reset: one file of a student's
// workspace given back as the course has it.
type ResetRequest struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	// Path is the file, relative to the student's work folder.
	Path string `json:"path"`
}

// ResetResult is the answer of POST /api/reset.
type ResetResult struct {
	Path string `json:"path"`
	// Beside is where the student's own version was kept ("" when it was
	// the course's already, or missing).
	Beside string `json:"beside,omitempty"`
	// Backup names the backup that can undo the reset.
	Backup string `json:"backup,omitempty"`
}

// ShareRequest is the body of POST /api/share: a read-only snapshot of a
// notebook of a student's workspace, for others to see.
type ShareRequest struct {
	Course  string `json:"course"`
	Student string `json:"student"`
	// Path is the notebook, relative to the student's work folder.
	Path string `json:"path"`
}

// ShareResult is the answer of POST /api/share.
type ShareResult struct {
	// Token names the snapshot; whoever has it can read it.
	Token string `json:"token"`
	// URL is where the front door serves it (/share/TOKEN), absolute when
	// the daemon knows the front door's public address.
	URL  string `json:"url"`
	Size int    `json:"size"`
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

// Hash is a git commit as the documents carry it: 40 hex digits. (It was
// an array of 20 numbers, in the plan's rejection and sync's report.)
type Hash = githash.Hash
