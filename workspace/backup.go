package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Backup is what an operation kept before it changed a workspace: the
// files it replaced or removed as they were, the files it created, and
// the base it started from.
type Backup struct {
	ID   string    `json:"id"` // sorts as the time it was taken
	Time time.Time `json:"time"`
	Op   string    `json:"op"`
	From string    `json:"from,omitempty"`
	To   string    `json:"to,omitempty"`
	// Entries are the writes, in the order they were made.
	Entries []BackupEntry `json:"entries"`
	// Done: the operation finished (a backup without it was taken by a
	// run cut short; Undo takes it back with the run that finished).
	Done bool `json:"-"`
}

// backupRecord is a Backup as kept on disk, with the base before the
// operation (what Undo goes back to).
type backupRecord struct {
	Backup
	Base *base `json:"base"`
}

// BackupEntry is one path an operation changed.
type BackupEntry struct {
	Path string `json:"path"`
	// Before is the sha256 of the file before ("" when there was none);
	// its content is the backup's files/N, N the entry's index.
	Before string      `json:"before,omitempty"`
	Perm   fs.FileMode `json:"perm,omitempty"`
	// After is the sha256 of what the operation wrote ("" when it removed).
	After string `json:"after,omitempty"`
}

func (w *Workspace) backupsDir() string { return filepath.Join(w.State, "backups") }

// backup keeps, before apply touches anything, every file the changes will
// replace or remove — a hard link to the very inode that was read (a
// replaced file is renamed over, so that inode is never written again),
// or a copy where a link cannot be made — and a record of every write.
// The record is written last: a backup folder without one was cut short,
// and only Prune looks at it.
func (w *Workspace) backup(f *folder, b *base, changes []*change, op, from, to string) (string, error) {
	if err := os.MkdirAll(w.backupsDir(), 0o700); err != nil {
		return "", err
	}
	now := w.now().UTC()
	id := now.Format("20060102T150405.000000000Z")
	dir := filepath.Join(w.backupsDir(), id)
	for n := 2; ; n++ {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		id = now.Format("20060102T150405.000000000Z") + "-" + strconv.Itoa(n)
		dir = filepath.Join(w.backupsDir(), id)
	}
	files := filepath.Join(dir, "files")
	if err := os.Mkdir(files, 0o700); err != nil {
		return "", err
	}
	rec := backupRecord{Backup: Backup{ID: id, Time: now, Op: op, From: from, To: to}, Base: b}
	for _, c := range changes {
		for _, wr := range c.writes {
			e := BackupEntry{Path: wr.path, After: wr.after()}
			if wr.prev.kind == regular {
				e.Before = wr.prev.sha
				e.Perm = wr.prev.info.Mode().Perm()
				name := filepath.Join(files, strconv.Itoa(len(rec.Entries)))
				if err := w.hook("backup " + wr.path); err != nil {
					return "", err
				}
				if err := linkOpen(wr.prev.f, name); err != nil {
					if err := writeFileSync(name, wr.prev.data, 0o600); err != nil {
						return "", err
					}
				}
			}
			rec.Entries = append(rec.Entries, e)
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := syncDir(files); err != nil {
		return "", err
	}
	if err := writeFileSync(filepath.Join(dir, "backup.json"), data, 0o600); err != nil {
		return "", err
	}
	return id, nil
}

func (w *Workspace) readBackup(id string) (*backupRecord, error) {
	data, err := os.ReadFile(filepath.Join(w.backupsDir(), id, "backup.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup %q: %w", id, ErrNoBackup)
	}
	if err != nil {
		return nil, err
	}
	var rec backupRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("backup %s: %w", id, err)
	}
	if _, err := os.Lstat(filepath.Join(w.backupsDir(), id, "done")); err == nil {
		rec.Done = true
	}
	return &rec, nil
}

// markDone marks backup id's operation finished.
func (w *Workspace) markDone(id string) error {
	fh, err := os.OpenFile(filepath.Join(w.backupsDir(), id, "done"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return fh.Close()
}

// Backups lists the workspace's complete backups, oldest first.
func (w *Workspace) Backups() ([]Backup, error) {
	ents, err := os.ReadDir(w.backupsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, e := range ents {
		rec, err := w.readBackup(e.Name())
		if errors.Is(err, ErrNoBackup) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Backup)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Undo puts the workspace back as it was before the operation that took
// backup id ("" for the latest): each file that operation replaced or
// removed gets its old content back, each file it created is removed
// unless the student changed it since, and the base is the one before.
// Undo is an operation like the others: it keeps a backup of what it
// replaces first, so it can be undone in turn (Undo("") after Undo("")
// redoes), and nothing the student wrote since is lost. ErrNoBackup when
// there is no such backup.
func (w *Workspace) Undo(ctx context.Context, id string) (*Report, error) {
	unlock, err := w.lock()
	if err != nil {
		return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
	}
	defer unlock()
	b, err := w.readBase()
	if err != nil {
		return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
	}
	if id == "" {
		all, err := w.Backups()
		if err != nil {
			return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("undo %s: %w", w.Dir, ErrNoBackup)
		}
		id = all[len(all)-1].ID
	}
	rec, err := w.readBackup(id)
	if err != nil {
		return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
	}
	f, err := openFolder(w.Dir, w.owner(), w.fault)
	if err != nil {
		return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
	}
	defer f.close()
	// Runs of the same operation cut short by a crash left backups just
	// before this one, never marked done: they are undone with it, the
	// oldest's content and base winning.
	chain := []*backupRecord{rec}
	if all, err := w.Backups(); err == nil {
		for j := len(all) - 1; j >= 0; j-- {
			if all[j].ID >= id {
				continue
			}
			if all[j].Done {
				break
			}
			r, err := w.readBackup(all[j].ID)
			if err != nil {
				break
			}
			chain = append(chain, r)
		}
	}
	type target struct {
		before, after, file string
		perm                fs.FileMode
	}
	targets := map[string]*target{}
	for _, r := range chain { // newest first
		for i := len(r.Entries) - 1; i >= 0; i-- {
			e := r.Entries[i]
			tg := targets[e.Path]
			if tg == nil {
				tg = &target{after: e.After}
				targets[e.Path] = tg
			}
			tg.before, tg.perm = e.Before, e.Perm
			tg.file = filepath.Join(w.backupsDir(), r.ID, "files", strconv.Itoa(i))
		}
	}
	final := chain[len(chain)-1].Base
	rep := &Report{Op: "undo", From: b.Commit, To: final.Commit}
	var changes []*change
	for _, p := range slices.Sorted(maps.Keys(targets)) {
		tg := targets[p]
		st, err := f.stat(p)
		if err != nil {
			return nil, fmt.Errorf("undo %s: %s: %w", w.Dir, p, err)
		}
		c := &change{path: p, noBase: true}
		switch {
		case tg.before != "" && st.kind == regular && st.sha == tg.before:
			continue
		case tg.before != "" && st.kind == other:
			rep.Skipped = append(rep.Skipped, p)
			continue
		case tg.before != "":
			data, err := os.ReadFile(tg.file)
			if err != nil {
				return nil, fmt.Errorf("undo %s: %s: %w", w.Dir, p, err)
			}
			c.v = vRestore
			c.writes = []write{{path: p, data: data, perm: tg.perm, create: st.kind == absent, prev: st}}
		case st.kind == regular && st.sha == tg.after:
			c.v = vRemove
			c.writes = []write{{path: p, remove: true, prev: st}}
		case st.kind == absent:
			continue
		default:
			c.v = vKeep // created by the operation, changed by the student since
		}
		changes = append(changes, c)
	}
	rep, err = w.apply(ctx, f, b, changes, rep, "", applyOpts{durable: true, backup: true, final: final})
	if err != nil {
		return nil, fmt.Errorf("undo %s: %w", w.Dir, err)
	}
	return rep, nil
}

// Prune removes the backups taken before now minus retention, but never
// the latest one, and backups cut short by a crash once as old; it returns
// how many it removed.
func (w *Workspace) Prune(ctx context.Context, retention time.Duration) (int, error) {
	ents, err := os.ReadDir(w.backupsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	cutoff := w.now().Add(-retention)
	latest := ""
	for _, id := range ids {
		if _, err := w.readBackup(id); err == nil {
			latest = id
		}
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if id == latest {
			continue
		}
		stamp := id
		if len(stamp) > len("20060102T150405.000000000Z") {
			stamp = stamp[:len("20060102T150405.000000000Z")]
		}
		t, err := time.Parse("20060102T150405.000000000Z", stamp)
		if err != nil || !t.Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.backupsDir(), id)); err != nil {
			return n, fmt.Errorf("prune %s: %w", w.Dir, err)
		}
		n++
	}
	return n, nil
}

// Open gives the student one course file on demand (lazy mode's first
// open of a notebook; it works in copy mode too): copied in if the path
// is free, and tracked from then on. A file already there is left alone —
// the student's — unless force is set: then it is a Reset. ErrNotInCourse
// if src has no such file.
func (w *Workspace) Open(ctx context.Context, src Source, p string, force bool) (*Report, error) {
	return w.open(ctx, src, p, force, "open")
}

// Reset gives back the course's version (at src) of one file: the
// student's version, if it differs, is kept beside it as "NAME (mine
// YYYY-MM-DD HH-MM-SS).EXT" — never overwritten — and the backup lets
// Undo swap them back. The path is tracked from then on as the course's.
func (w *Workspace) Reset(ctx context.Context, src Source, p string) (*Report, error) {
	return w.open(ctx, src, p, true, "reset")
}

func (w *Workspace) open(ctx context.Context, src Source, p string, force bool, op string) (*Report, error) {
	if err := cleanPath(p); err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	unlock, err := w.lock()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	defer unlock()
	b, err := w.readBase()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	if b.Mode == ModeNone {
		return nil, fmt.Errorf("%s %s: a workspace of mode none: %w", op, w.Dir, ErrBadMode)
	}
	snap, err := w.Store.Snapshot(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	tf, ok := snap.Files[p]
	if !ok {
		return nil, fmt.Errorf("%s %s: %s: %w", op, w.Dir, p, ErrNotInCourse)
	}
	f, err := openFolder(w.Dir, w.owner(), w.fault)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	defer f.close()
	st, err := f.stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %s: %w", op, w.Dir, p, err)
	}
	rep := &Report{Op: op, From: b.Commit, To: b.Commit}
	c := &change{path: p, base: tf.SHA}
	switch {
	case st.kind == other:
		return nil, fmt.Errorf("%s %s: %s: %w", op, w.Dir, p, ErrInTheWay)
	case st.kind == absent:
		c.v = vAdd
		c.writes = []write{{path: p, sha: tf.SHA, perm: filePerm(tf.Exec), create: true}}
	case st.sha == tf.SHA:
		c.v = vSettle
	case !force:
		return rep, nil // the student's version: left alone
	default:
		side, exists, err := f.besideName(p, "mine", w.now().Format("2006-01-02 15-04-05"), st.sha)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %s: %w", op, w.Dir, p, err)
		}
		if !exists {
			c.writes = append(c.writes, write{path: side, data: st.data, perm: keepPerm(st, tf.Exec), create: true})
		}
		c.writes = append(c.writes, write{path: p, sha: tf.SHA, perm: keepPerm(st, tf.Exec), prev: st})
		c.conflict = &Conflict{Path: p, Beside: side, Reason: ReasonReset}
	}
	rep, err = w.apply(ctx, f, b, []*change{c}, rep, "", applyOpts{durable: true, backup: true})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, w.Dir, err)
	}
	return rep, nil
}
