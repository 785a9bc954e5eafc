// Package rootdir is the layout of a site's data root (--root, ROOT): every
// path under it is built here and nowhere else, so that what lives where,
// and who writes it, can be read in one place, and a file cannot move on
// disk by accident (the test pins every name).
//
// ROOT is 0750 and ROOT/state 0700, files in state 0600: the daemon's
// PrepareRoot keeps them so. The JSON state files are written with
// internal/atomicfile (a temporary file, then a rename), so a crash leaves
// the old version or the new one.
//
//	ROOT/
//	  mirrors/               bare mirrors of the config and course repos (gitwatch)
//	  courses/COURSE/        the work tree of each course (gitwatch's Syncer)
//	  students/STUDENT/COURSE/  each student's work, mounted in their container (containers)
//	  state/                 what the daemon knows between runs (below)
//
// It is a leaf: it imports nothing of the project.
package rootdir

import "path/filepath"

// Mirrors is the folder of the bare mirrors of every remote the site
// follows, the config repo's and the courses', one folder per remote named
// by gitwatch.Mirrors; only gitwatch writes there.
func Mirrors(root string) string { return filepath.Join(root, "mirrors") }

// Course is the work tree of course: its files at the commit in force,
// checked out in place by gitwatch's Syncer. Nothing else writes it: the
// students' containers mount it read-only, and containers reads what the
// nbhosting preset takes from it.
func Course(root, course string) string { return filepath.Join(root, "courses", course) }

// Student is the folder of one student's work in every course; containers
// creates it on spawn and gives it to the student's uid when one is known.
func Student(root, student string) string { return filepath.Join(root, "students", student) }

// StudentCourse is one student's work in one course, the folder mounted in
// their container; containers creates it beside Student, owned alike. It
// is the student's workspace: besides the student, only package workspace
// writes into it (the course's files on the first visit, merges at idle
// time, resets), as the student's uid, never losing a byte of theirs.
func StudentCourse(root, student, course string) string {
	return filepath.Join(Student(root, student), course)
}

// State is the folder of what the daemon knows between runs, private to
// its user (0700): the daemon's PrepareRoot creates and tightens it.
func State(root string) string { return filepath.Join(root, "state") }

// APISocket is the unix socket the daemon serves its API on, created by
// the server package: the command line's way to find the daemon of the
// --root it is given. Only the daemon's user can open it (state is 0700,
// the socket 0600), so the command line never hands its token to another
// user's listener — as it would to whatever answers on a TCP port any
// local user can bind.
func APISocket(root string) string { return filepath.Join(State(root), "api.sock") }

// History is the bbolt file of the history store (pulls, builds, actions,
// config changes, errors); the history package writes it, holding a file
// lock while the daemon runs.
func History(root string) string { return filepath.Join(State(root), "history.db") }

// TokenKey is the site key every container's Jupyter token is derived
// from; the token package creates it on first use.
func TokenKey(root string) string { return filepath.Join(State(root), "jupyter-token.key") }

// ProxySessionKey is the key that signs the front door's session cookies,
// kept so that sessions survive a restart; the proxy package creates it.
func ProxySessionKey(root string) string { return filepath.Join(State(root), "proxy-session.key") }

// ActivityMemory is what the activity probe remembers between passes
// (kernels seen busy, CPU samples), so that a restart forgets nothing; the
// container pass (reconcile) saves it.
func ActivityMemory(root string) string { return filepath.Join(State(root), "activity.json") }

// LastPass is the report of the last container pass, written by site so
// that a status from another process (the CLI) can show it.
func LastPass(root string) string { return filepath.Join(State(root), "last-pass.json") }

// KnownCourses is every course the site has had in a config revision it
// applied, written by site: only containers of these courses are adopted.
func KnownCourses(root string) string { return filepath.Join(State(root), "known-courses.json") }

// BuildFailures is the last failed build of each image, written by site so
// that the hold after a failure and the status survive a restart.
func BuildFailures(root string) string { return filepath.Join(State(root), "build-failures.json") }

// ConfigState is the config loader's record (configrepo): the config repo
// followed, its last good commit and its last rejected one, so that the
// last good revision survives a restart.
func ConfigState(root string) string { return filepath.Join(State(root), "config.json") }

// UIDs is the uid the site allocated to each student with no host account
// (package uids), kept so that a student's uid never changes and is never
// given to another.
func UIDs(root string) string { return filepath.Join(State(root), "uids.json") }

// UIDsLock is the file lock held while UIDs is read and written, by the
// daemon and the command line alike.
func UIDsLock(root string) string { return filepath.Join(State(root), "uids.lock") }

// PullStatus is the pull state of every course (commit checked out, last
// check and fetch, error), written by gitwatch's Syncer after each pass.
func PullStatus(root string) string { return filepath.Join(State(root), "courses.json") }

// Workspaces is the store of course's workspaces (package workspace): the
// content of every course file given to a student, one snapshot per course
// commit, and each student's base and backups (WorkspaceState). Only the
// daemon reads it (it is under state, 0700).
func Workspaces(root, course string) string { return filepath.Join(State(root), "workspaces", course) }

// WorkspaceState is the private state of one student's workspace of
// course: its base, backups and lock, outside the student's folder.
func WorkspaceState(root, course, student string) string {
	return filepath.Join(Workspaces(root, course), "students", student)
}

// Shares holds the HTML snapshots of notebooks students shared, one file
// per share named by its unguessable token; the front door serves them.
func Shares(root string) string { return filepath.Join(State(root), "shares") }
