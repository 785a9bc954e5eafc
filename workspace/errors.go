package workspace

import "errors"

var (
	// ErrNotInitialized: the workspace has no base yet (Init was never
	// run, or did not finish).
	ErrNotInitialized = errors.New("workspace not initialized")
	// ErrInitialized: Init found the workspace made already.
	ErrInitialized = errors.New("workspace already initialized")
	// ErrBusy: another Init, Update, Reset or Undo holds the workspace's
	// lock; try again on the next pass.
	ErrBusy = errors.New("workspace busy")
	// ErrNotInCourse: the path is not a file of the course's snapshot.
	ErrNotInCourse = errors.New("not a file of the course")
	// ErrInTheWay: something of the student's stands where a file was to
	// be written (a file where a folder is needed, or a file created
	// meanwhile); it was left alone.
	ErrInTheWay = errors.New("something of the student's is in the way")
	// ErrNoBackup: no such backup (or none at all).
	ErrNoBackup = errors.New("no such backup")
	// ErrBadCommit: a commit name that cannot name a file.
	ErrBadCommit = errors.New("bad commit name")
	// ErrBadPattern: an exclude pattern path.Match rejects.
	ErrBadPattern = errors.New("bad exclude pattern")
	// ErrBadMode: a mode other than copy, lazy or none.
	ErrBadMode = errors.New("bad workspace mode")
	// ErrBadPath: a path that is not a clean relative path inside the workspace.
	ErrBadPath = errors.New("bad path")
)
