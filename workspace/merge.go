package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// verdict is what the merge does with one path.
type verdict int

const (
	vSkip     verdict = iota // the course did not change it: nothing, the student's file unread
	vSettle                  // the student's file already is the course's: record it
	vForget                  // deleted in the course and by the student: drop it from the base
	vUpdate                  // untouched by the student, changed in the course: the course's
	vAdd                     // new in the course, nothing in the way: copied in
	vRestore                 // deleted by the student, changed in the course: back
	vRemove                  // deleted in the course, untouched by the student: removed
	vKeep                    // deleted in the course, changed by the student: kept, untracked
	vMerge                   // a notebook changed on both sides: merged cell by cell
	vConflict                // changed on both sides: the student's in place, the course's beside
	vInTheWay                // the student's own where the course has a new file: the course's beside
)

var verdictNames = [...]string{"skip", "settle", "forget", "update", "add", "restore", "remove", "keep", "merge", "conflict", "in-the-way"}

func (v verdict) String() string { return verdictNames[v] }

// decide is the merge's rule for one path, from the base's sha (b, "" when
// the base has no such file), the course's (t, "" when the course has
// none) and what the student's folder holds (o). It is the whole decision
// table of docs/workspaces.md, in the order of Update's doc.
func decide(b, t string, o fileState, notebook bool) verdict {
	if b == t {
		return vSkip
	}
	if o.kind == regular && o.sha == t {
		return vSettle
	}
	switch {
	case t == "": // deleted in the course
		switch {
		case o.kind == absent:
			return vForget
		case o.kind == regular && o.sha == b:
			return vRemove
		default:
			return vKeep
		}
	case b == "": // new in the course
		if o.kind == absent {
			return vAdd
		}
		return vInTheWay
	default: // changed in the course
		switch {
		case o.kind == absent:
			return vRestore
		case o.kind == other:
			return vInTheWay
		case o.sha == b:
			return vUpdate
		case notebook:
			return vMerge
		default:
			return vConflict
		}
	}
}

// change is what an operation does to one path: its writes, in order, and
// what the base says of the path once they are all done.
type change struct {
	path     string
	v        verdict
	writes   []write
	base     string // the path's sha in the base after ("" drops it)
	beside   string // the course version put beside ("" drops it)
	conflict *Conflict
	noBase   bool // the base is not the change's to set (Undo)
}

// write is one file operation in the student's folder.
type write struct {
	path   string
	sha    string // the content: a blob of the store, unless data is set
	data   []byte
	perm   fs.FileMode
	remove bool
	create bool      // the path must not exist: linked in, never clobbering
	prev   fileState // replace, remove: what must still be there
}

func (wr *write) after() string {
	if wr.remove {
		return ""
	}
	if wr.data != nil {
		return shaOf(wr.data)
	}
	return wr.sha
}

func filePerm(exec bool) fs.FileMode {
	if exec {
		return 0o755
	}
	return 0o644
}

// keepPerm is the student's file's mode bits when it is replaced.
func keepPerm(st fileState, exec bool) fs.FileMode {
	if st.kind == regular && st.info != nil {
		return st.info.Mode().Perm()
	}
	return filePerm(exec)
}

// universe is every path a merge looks at: the base's and, for a copy,
// the snapshot's.
func universe(b *base, snap *Snapshot) []string {
	set := map[string]bool{}
	for p := range b.Files {
		set[p] = true
	}
	for p := range b.Beside {
		set[p] = true
	}
	if b.Mode == ModeCopy {
		for p := range snap.Files {
			set[p] = true
		}
	}
	ps := make([]string, 0, len(set))
	for p := range set {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// merge brings the workspace from base b to snap: plan every path, then
// apply (backup, files, base).
func (w *Workspace) merge(ctx context.Context, b *base, snap *Snapshot, op string) (*Report, error) {
	f, err := openFolder(w.Dir, w.owner(), w.fault)
	if err != nil {
		return nil, err
	}
	defer f.close()
	rep := &Report{Op: op, From: b.Commit, To: snap.Commit}
	date := w.now().Format("2006-01-02")
	var changes []*change
	for _, p := range universe(b, snap) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := w.plan(f, b, snap, p, date)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if c != nil {
			changes = append(changes, c)
		}
	}
	init := op == "init"
	return w.apply(ctx, f, b, changes, rep, snap.Commit, applyOpts{durable: !init, backup: !init})
}

// plan decides one path and prepares its writes; nil means nothing to do.
func (w *Workspace) plan(f *folder, b *base, snap *Snapshot, p, date string) (*change, error) {
	bsha := b.Files[p]
	tf, inCourse := snap.Files[p]
	t := tf.SHA
	if bes, ok := b.Beside[p]; ok {
		if !inCourse {
			return &change{path: p, v: vForget, base: bsha}, nil // the course dropped it: forget what was beside
		}
		if bes == t {
			return nil, nil // the course's version is beside already
		}
		bsha = "" // the path is the student's: the course's new version is news
	}
	if bsha == t {
		return nil, nil
	}
	st, err := f.stat(p)
	if err != nil {
		return nil, err
	}
	v := decide(bsha, t, st, strings.HasSuffix(p, ".ipynb"))
	c := &change{path: p, v: v, base: t}
	switch v {
	case vSettle:
	case vForget, vKeep:
		c.base = ""
	case vRemove:
		c.base = ""
		c.writes = []write{{path: p, remove: true, prev: st}}
	case vAdd, vRestore:
		c.writes = []write{{path: p, sha: t, perm: filePerm(tf.Exec), create: true}}
	case vUpdate:
		c.writes = []write{{path: p, sha: t, perm: keepPerm(st, tf.Exec), prev: st}}
	case vMerge:
		bdata, err := w.Store.Read(bsha)
		if err != nil {
			return nil, err
		}
		tdata, err := w.Store.Read(t)
		if err != nil {
			return nil, err
		}
		out, cells, err := mergeNotebooks(bdata, st.data, tdata)
		if errors.Is(err, errNotNotebook) {
			return w.besideChange(f, c, st, tf, date, ReasonBothChanged, nil)
		}
		if err != nil {
			return nil, err
		}
		var inPlace []write
		if shaOf(out) != st.sha {
			inPlace = []write{{path: p, data: out, perm: keepPerm(st, tf.Exec), prev: st}}
		}
		if len(cells) == 0 {
			c.writes = inPlace
			if len(inPlace) == 0 {
				c.v = vSettle
			}
			return c, nil
		}
		c, err = w.besideChange(f, c, st, tf, date, ReasonBothChanged, cells)
		if err != nil {
			return nil, err
		}
		c.writes = append(c.writes, inPlace...)
	case vConflict:
		return w.besideChange(f, c, st, tf, date, ReasonBothChanged, nil)
	case vInTheWay:
		c.base, c.beside = "", t
		return w.besideChange(f, c, st, tf, date, ReasonInTheWay, nil)
	}
	return c, nil
}

// besideChange puts the course's version of c.path beside the student's.
func (w *Workspace) besideChange(f *folder, c *change, st fileState, tf File, date, reason string, cells []string) (*change, error) {
	if c.v == vMerge {
		c.v = vConflict
	}
	var side string
	var exists bool
	var err error
	if st.blocked != "" {
		// A file of the student's where the course has a folder: the
		// course's files go in a folder beside it.
		var dir string
		dir, err = f.besideDir(st.blocked, "course "+date)
		side = dir + strings.TrimPrefix(c.path, st.blocked)
		if err == nil {
			var s fileState
			s, err = f.stat(side)
			exists = s.kind == regular && s.sha == tf.SHA
		}
	} else {
		side, exists, err = f.besideName(c.path, "course", date, tf.SHA)
	}
	if err != nil {
		return nil, err
	}
	c.conflict = &Conflict{Path: c.path, Beside: side, Reason: reason, Cells: cells}
	if !exists {
		c.writes = []write{{path: side, sha: tf.SHA, perm: filePerm(tf.Exec), create: true}}
	}
	return c, nil
}

// besideName is the name of another version of p in p's folder: "STEM
// (WORD STAMP).EXT", then "STEM (WORD STAMP 2).EXT"…; when a file "STEM
// (WORD …).EXT" of that folder already holds sha, that one (exists true),
// so that a run repeated after a crash puts nothing twice.
func (f *folder) besideName(p, word, stamp, sha string) (name string, exists bool, err error) {
	dir, file := path.Split(p)
	ext := path.Ext(file)
	stem := strings.TrimSuffix(file, ext)
	if stem == "" {
		stem, ext = file, ""
	}
	prefix := stem + " (" + word + " "
	if sha != "" {
		if names, err := f.list(dir); err == nil {
			for _, n := range names {
				if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ")"+ext) {
					if s, err := f.stat(dir + n); err == nil && s.kind == regular && s.sha == sha {
						return dir + n, true, nil
					}
				}
			}
		}
	}
	for n := 1; n < 1000; n++ {
		cand := prefix + stamp + ")" + ext
		if n > 1 {
			cand = prefix + stamp + " " + strconv.Itoa(n) + ")" + ext
		}
		if _, err := f.root.Lstat(dir + cand); errors.Is(err, fs.ErrNotExist) {
			return dir + cand, false, nil
		} else if err != nil {
			return "", false, err
		}
	}
	return "", false, fmt.Errorf("%s: %w", p, ErrInTheWay)
}

// besideDir is the folder beside dir (a file of the student's) where the
// course's files under dir go: "DIR (TAG)", "DIR (TAG 2)"…, reused when it
// is a folder.
func (f *folder) besideDir(dir, tag string) (string, error) {
	for n := 1; n < 1000; n++ {
		cand := dir + " (" + tag + ")"
		if n > 1 {
			cand = dir + " (" + tag + " " + strconv.Itoa(n) + ")"
		}
		fi, err := f.root.Lstat(cand)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.IsDir()) {
			return cand, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: %w", dir, ErrInTheWay)
}

// list is the names in folder dir ("" for the top).
func (f *folder) list(dir string) ([]string, error) {
	d := strings.TrimSuffix(dir, "/")
	if d == "" {
		d = "."
	}
	fh, err := f.root.Open(d)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return fh.Readdirnames(-1)
}

type applyOpts struct {
	durable bool  // fsync each file written (else one syncfs at the end)
	backup  bool  // keep what is replaced or created, for Undo
	final   *base // the base to end with, whatever the changes say (Undo)
}

// apply carries out the changes: the backup first, then each change's
// writes in order — a change whose file the student touched meanwhile is
// skipped, its base left — then the files are flushed, and the base is
// written last.
func (w *Workspace) apply(ctx context.Context, f *folder, b *base, changes []*change, rep *Report, to string, o applyOpts) (*Report, error) {
	nwrites := 0
	for _, c := range changes {
		nwrites += len(c.writes)
	}
	if o.backup && nwrites > 0 {
		id, err := w.backup(f, b, changes, rep.Op, rep.From, to)
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		rep.Backup = id
	}
	nb := b.clone()
	skipped := false
	var done []string
	for _, c := range changes {
		ok := true
		for _, wr := range c.writes {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !wr.create && !f.unchanged(wr.path, wr.prev) {
				ok = false
				break
			}
			var err error
			if wr.remove {
				err = f.remove(wr.path)
			} else {
				data := wr.data
				if data == nil {
					data, err = w.Store.Read(wr.sha)
				}
				if err == nil {
					err = f.put(wr.path, data, wr.perm, wr.create, o.durable)
				}
			}
			if errors.Is(err, ErrInTheWay) {
				ok = false
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", wr.path, err)
			}
			done = append(done, wr.path)
		}
		if !ok {
			skipped = true
			rep.Skipped = append(rep.Skipped, c.path)
			continue
		}
		if !c.noBase {
			if c.base == "" {
				delete(nb.Files, c.path)
			} else {
				nb.Files[c.path] = c.base
			}
			if c.beside == "" {
				delete(nb.Beside, c.path)
			} else {
				nb.Beside[c.path] = c.beside
			}
		}
		c.report(rep)
	}
	var err error
	if len(done) > 0 {
		if o.durable {
			err = f.syncDirs(done)
		} else {
			err = syncFS(w.Dir)
		}
	}
	if err != nil {
		return nil, err
	}
	if o.final != nil {
		nb = o.final.clone()
	} else if !skipped && to != "" {
		nb.Commit = to
	}
	if !reflect.DeepEqual(nb, b) {
		if err := w.writeBase(nb); err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
	}
	if rep.Backup != "" {
		if err := w.markDone(rep.Backup); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func (c *change) report(r *Report) {
	if c.conflict != nil {
		r.Conflicts = append(r.Conflicts, *c.conflict)
		return
	}
	switch c.v {
	case vAdd:
		r.Added = append(r.Added, c.path)
	case vRestore:
		r.Restored = append(r.Restored, c.path)
	case vUpdate:
		r.Updated = append(r.Updated, c.path)
	case vRemove:
		r.Removed = append(r.Removed, c.path)
	case vMerge:
		r.Merged = append(r.Merged, c.path)
	case vKeep:
		r.Kept = append(r.Kept, c.path)
	}
}
