package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Mode is how much of the course a workspace is given.
type Mode string

const (
	// ModeCopy gives the whole course on the first visit, and keeps every
	// course file in line (the default).
	ModeCopy Mode = "copy"
	// ModeLazy gives nothing at first; Open copies one file when the
	// student opens it, and Update keeps in line the files given so far.
	ModeLazy Mode = "lazy"
	// ModeNone gives nothing, ever: the folder is the student's alone.
	ModeNone Mode = "none"
)

// Workspace is one student's copy of one course: the folder the student
// works in, and the private state that remembers what the course gave it.
// Its methods take the workspace's lock for their whole run (ErrBusy when
// another holds it), so two processes never merge one workspace at once.
//
// They are meant to run while the student's server is stopped or idle:
// right before a file is replaced, it is checked to be the one read (same
// inode, size and time), and a file the student saved meanwhile is left for
// the next run (Report.Skipped); a write that lands between that check and
// the rename is the one window left, which only the caller's idleness
// closes.
type Workspace struct {
	// Dir is the student's folder, ROOT/students/STUDENT/COURSE.
	Dir string
	// State is this workspace's private folder, outside Dir (the base, the
	// backups, the lock): ROOT/state/workspaces/COURSE/students/STUDENT, say.
	State string
	// Store is the course's store of content, shared by all its workspaces.
	Store *Store
	// UID and GID own what is written in Dir, when the process runs as
	// root; a negative UID leaves ownership alone.
	UID, GID int
	// Now is the clock that dates the names of files put beside and of
	// backups; nil means time.Now.
	Now func() time.Time

	// fault, set by tests, is called before each step that changes a
	// file (write, remove, backup, base); an error stops the run there,
	// as a crash would.
	fault func(op string) error
}

func (w *Workspace) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Workspace) owner() owner { return owner{w.UID, w.GID} }

func (w *Workspace) hook(op string) error {
	if w.fault == nil {
		return nil
	}
	return w.fault(op)
}

// base is what a workspace was made from: the course commit it is at, and
// for each course file it tracks the sha256 of the content the course last
// gave it — the base of the next three-way merge. Beside holds the paths
// where the student's own file stood in the way of a course file: the sha
// of the course's version put beside it, so that it is put there once.
type base struct {
	Commit string            `json:"commit"` // first: Behind reads only this
	Mode   Mode              `json:"mode"`
	Files  map[string]string `json:"files"`
	Beside map[string]string `json:"beside,omitempty"`
}

func (w *Workspace) basePath() string { return filepath.Join(w.State, "base.json") }

func (w *Workspace) readBase() (*base, error) {
	b, err := os.ReadFile(w.basePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotInitialized
	}
	if err != nil {
		return nil, err
	}
	var bs base
	if err := json.Unmarshal(b, &bs); err != nil {
		return nil, fmt.Errorf("base of %s: %w", w.Dir, err)
	}
	if bs.Files == nil {
		bs.Files = map[string]string{}
	}
	if bs.Beside == nil {
		bs.Beside = map[string]string{}
	}
	return &bs, nil
}

func (w *Workspace) writeBase(b *base) error {
	if err := w.hook("base"); err != nil {
		return err
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return writeFileSync(w.basePath(), data, 0o600)
}

func (b *base) clone() *base {
	c := &base{Commit: b.Commit, Mode: b.Mode, Files: make(map[string]string, len(b.Files)), Beside: make(map[string]string, len(b.Beside))}
	for k, v := range b.Files {
		c.Files[k] = v
	}
	for k, v := range b.Beside {
		c.Beside[k] = v
	}
	return c
}

// lock takes the workspace's lock (a flock on State/lock), or ErrBusy.
func (w *Workspace) lock() (func(), error) {
	if err := os.MkdirAll(w.State, 0o700); err != nil {
		return nil, err
	}
	fh, err := os.OpenFile(filepath.Join(w.State, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fh.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", w.Dir, ErrBusy)
		}
		return nil, err
	}
	return func() { fh.Close() }, nil
}

// Commit is the course commit the workspace was last brought to in full,
// or ErrNotInitialized.
func (w *Workspace) Commit() (string, error) {
	fh, err := os.Open(w.basePath())
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNotInitialized
	}
	if err != nil {
		return "", err
	}
	defer fh.Close()
	// The commit is the first key: read no further.
	dec := json.NewDecoder(fh)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("base of %s: not an object", w.Dir)
	}
	if t, err := dec.Token(); err != nil || t != "commit" {
		return "", fmt.Errorf("base of %s: no commit first", w.Dir)
	}
	var c string
	if err := dec.Decode(&c); err != nil {
		return "", fmt.Errorf("base of %s: %w", w.Dir, err)
	}
	return c, nil
}

// Behind reports whether the workspace needs an Update to reach commit: it
// reads the first bytes of the base only, so a status over a thousand
// workspaces is cheap. A ModeNone workspace is never behind.
func (w *Workspace) Behind(commit string) (bool, error) {
	c, err := w.Commit()
	if err != nil {
		return false, err
	}
	if c == commit {
		return false, nil
	}
	b, err := w.readBase()
	if err != nil {
		return false, err
	}
	return b.Mode != ModeNone, nil
}

// Report is what an operation did to a workspace, path by path (slash
// paths from the workspace's top), for the history and for status.
type Report struct {
	Op       string   `json:"op"` // init, update, open, reset, undo
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
	Added    []string `json:"added,omitempty"`    // new in the course, copied in
	Restored []string `json:"restored,omitempty"` // deleted by the student, changed in the course: back
	Updated  []string `json:"updated,omitempty"`  // untouched by the student: now the course's version
	Removed  []string `json:"removed,omitempty"`  // deleted in the course, untouched by the student
	Merged   []string `json:"merged,omitempty"`   // notebooks changed on both sides, merged cell by cell
	Kept     []string `json:"kept,omitempty"`     // deleted in the course, changed by the student: kept
	// Conflicts are the files where both versions are now side by side.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Skipped are the paths the student changed while the operation ran:
	// left as they were, for the next run.
	Skipped []string `json:"skipped,omitempty"`
	// Backup is the backup taken before anything changed (Undo's
	// argument), "" when nothing was replaced or created.
	Backup string `json:"backup,omitempty"`
}

// Conflict reasons.
const (
	// ReasonBothChanged: the student and the course changed the file
	// differently (for a notebook, the same cell).
	ReasonBothChanged = "both changed"
	// ReasonInTheWay: the student has a file (or folder) of their own
	// where the course now has one.
	ReasonInTheWay = "in the way"
	// ReasonReset: the student asked for the course's version back.
	ReasonReset = "reset"
)

// Conflict is a file of which two versions are kept side by side.
type Conflict struct {
	// Path is the file in place: the student's version (for a notebook,
	// with the course's changes to other cells merged in) — or, after a
	// reset, the course's.
	Path string `json:"path"`
	// Beside is the other version's name, in the same folder: the
	// course's, "NAME (course YYYY-MM-DD).EXT", or after a reset the
	// student's, "NAME (mine YYYY-MM-DD HH-MM-SS).EXT".
	Beside string `json:"beside"`
	Reason string `json:"reason"`
	// Cells are the notebook cells changed on both sides (their ids, or
	// "cell N" by position in the student's notebook).
	Cells []string `json:"cells,omitempty"`
}

// Changed reports whether the operation changed any file.
func (r *Report) Changed() bool {
	return len(r.Added)+len(r.Restored)+len(r.Updated)+len(r.Removed)+len(r.Merged)+len(r.Conflicts) > 0
}

// Init makes the workspace on the student's first visit: the folder
// (created if missing, owned by the student) gets what mode says, and the
// base records the commit and, per file given, the course's content.
//
// With ModeCopy every file of src's snapshot is copied; a file of the
// student's already there (say, migrated from nbhosting) is kept, and the
// course's version is put beside it when they differ. Files are written
// atomically; the file system is flushed once at the end, before the base
// is written, so a crash leaves no base and Init runs again from where it
// was. Init returns ErrInitialized if the workspace has a base.
func (w *Workspace) Init(ctx context.Context, src Source, mode Mode) (*Report, error) {
	if mode == "" {
		mode = ModeCopy
	}
	if mode != ModeCopy && mode != ModeLazy && mode != ModeNone {
		return nil, fmt.Errorf("init %s: mode %q: %w", w.Dir, mode, ErrBadMode)
	}
	unlock, err := w.lock()
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", w.Dir, err)
	}
	defer unlock()
	if _, err := w.readBase(); err == nil {
		return nil, fmt.Errorf("init %s: %w", w.Dir, ErrInitialized)
	} else if !errors.Is(err, ErrNotInitialized) {
		return nil, fmt.Errorf("init %s: %w", w.Dir, err)
	}
	if err := w.mkdir(); err != nil {
		return nil, fmt.Errorf("init %s: %w", w.Dir, err)
	}
	b := &base{Commit: src.Commit, Mode: mode, Files: map[string]string{}, Beside: map[string]string{}}
	if mode != ModeCopy {
		if !commitRE.MatchString(src.Commit) {
			return nil, fmt.Errorf("init %s: commit %q: %w", w.Dir, src.Commit, ErrBadCommit)
		}
		if err := w.writeBase(b); err != nil {
			return nil, fmt.Errorf("init %s: %w", w.Dir, err)
		}
		return &Report{Op: "init", To: src.Commit}, nil
	}
	snap, err := w.Store.Snapshot(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", w.Dir, err)
	}
	b.Commit = ""
	rep, err := w.merge(ctx, b, snap, "init")
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", w.Dir, err)
	}
	return rep, nil
}

// mkdir makes Dir if missing, and gives it to the student.
func (w *Workspace) mkdir() error {
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		return err
	}
	if o := w.owner(); o.active() {
		return os.Lchown(w.Dir, o.uid, o.gid)
	}
	return nil
}

// Update brings the workspace to src's commit by a three-way merge of each
// file: its base (what the course last gave), the student's (the folder),
// the course's (src). Per file, in this order:
//
//  1. the course did not change it (base = course): nothing, whatever the
//     student did — the student's file is not even read;
//  2. the student's file already is the course's: nothing to write;
//  3. deleted in the course: removed if the student did not touch it,
//     kept (and no longer tracked) if they changed it, forgotten if they
//     deleted it too;
//  4. new in the course: copied in, or — something of the student's in
//     the way — put beside it, once per course version;
//  5. changed in the course: written if the student did not touch it;
//     back if the student had deleted it (the course has news for them);
//     a notebook the student changed is merged cell by cell; any other
//     file the student changed stays theirs, the course's put beside it.
//
// "Not touched" means byte for byte: a notebook the student only ran
// counts as changed, and goes through the cell merge, which keeps their
// outputs. Lazy workspaces merge only the files given so far. Before
// anything is replaced or removed, a backup keeps it (Report.Backup).
// The base is advanced after the files are on disk, so a crash anywhere
// leaves each file old or new, and Update run again converges.
func (w *Workspace) Update(ctx context.Context, src Source) (*Report, error) {
	unlock, err := w.lock()
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", w.Dir, err)
	}
	defer unlock()
	b, err := w.readBase()
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", w.Dir, err)
	}
	if b.Mode == ModeNone {
		return &Report{Op: "update", From: b.Commit, To: b.Commit}, nil
	}
	snap, err := w.Store.Snapshot(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", w.Dir, err)
	}
	rep, err := w.merge(ctx, b, snap, "update")
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", w.Dir, err)
	}
	return rep, nil
}

// cleanPath checks that p is a clean relative slash path inside a
// workspace.
func cleanPath(p string) error {
	if p == "" || p == "." || path.Clean(p) != p || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q: %w", p, ErrBadPath)
	}
	return nil
}

// Status is how a workspace stands against its base: what the student
// changed since the course last gave each file.
type Status struct {
	Commit string `json:"commit"`
	Mode   Mode   `json:"mode"`
	// Tracked is the number of course files the base knows.
	Tracked int `json:"tracked"`
	// Modified and Deleted are the tracked files the student changed or
	// deleted (an Update will merge or respect them); Other are tracked
	// paths where something else than a file now stands.
	Modified []string `json:"modified,omitempty"`
	Deleted  []string `json:"deleted,omitempty"`
	Other    []string `json:"other,omitempty"`
	// Beside are the paths where a file of the student's stood in the way
	// of the course's, which was put beside it.
	Beside []string `json:"beside,omitempty"`
}

// Status reads every tracked file of the workspace (it hashes them: for a
// status page or `why`, not for every pass — Behind is the cheap query).
// It takes no lock and changes nothing.
func (w *Workspace) Status(ctx context.Context) (*Status, error) {
	b, err := w.readBase()
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", w.Dir, err)
	}
	f, err := openFolder(w.Dir, w.owner(), nil)
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", w.Dir, err)
	}
	defer f.close()
	st := &Status{Commit: b.Commit, Mode: b.Mode, Tracked: len(b.Files)}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := f.stat(p)
		if err != nil {
			return nil, fmt.Errorf("status %s: %s: %w", w.Dir, p, err)
		}
		switch {
		case s.kind == absent:
			st.Deleted = append(st.Deleted, p)
		case s.kind == other:
			st.Other = append(st.Other, p)
		case s.sha != b.Files[p]:
			st.Modified = append(st.Modified, p)
		}
		for _, o := range f.open {
			o.Close()
		}
		f.open = f.open[:0]
	}
	st.Beside = slices.Sorted(maps.Keys(b.Beside))
	return st, nil
}
