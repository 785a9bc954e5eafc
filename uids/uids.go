// Package uids keeps one stable uid for each student of a site who has no
// host account: allocated from a range courses.yaml gives
// (students.uids), recorded in ROOT/state/uids.json, never given to
// another student, and never one a host account has — a host user who
// shares a student's uid can read the student's files and the environment
// (Jupyter token) of their server's processes.
//
// The record is read and written under a file lock, so the daemon and the
// command line, which both spawn, allocate from one sequence.
package uids

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// Range is the uids allocated from, First to Last included.
type Range struct{ First, Last int }

// Store allocates uids under a site's data root. It is safe for concurrent
// use, within one process and across processes.
type Store struct {
	root  string
	r     Range
	floor int
	// hostHas reports whether a host account has uid; a field so that
	// tests can name accounts the host lacks.
	hostHas func(uid int) bool
	mu      sync.Mutex
}

// record is the content of ROOT/state/uids.json.
type record struct {
	// Students maps each student to their uid.
	Students map[string]int `json:"students"`
	// Migrated is set once the owners of the student folders that were
	// there before the record are adopted (see migrate).
	Migrated bool `json:"migrated"`
}

// New returns the Store of root, allocating from r; no uid below floor is
// ever adopted or allocated.
func New(root string, r Range, floor int) *Store {
	return &Store{root: root, r: r, floor: floor, hostHas: hostHas}
}

func hostHas(uid int) bool {
	_, err := user.LookupId(strconv.Itoa(uid))
	return err == nil
}

// UID returns student's uid: the one recorded; else, on first use, the
// owner of the student's folder ROOT/students/STUDENT when it was made
// before (with a uid given to spawn, or by nbhosting); else the next uid of
// the range after every uid recorded, skipping those of host accounts.
func (s *Store) UID(student string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lock(rootdir.UIDsLock(s.root))
	if err != nil {
		return 0, err
	}
	defer unlock()
	rec, err := s.read()
	if err != nil {
		return 0, err
	}
	if uid, ok := rec.Students[student]; ok {
		return uid, nil
	}
	if !rec.Migrated {
		s.migrate(&rec)
		rec.Migrated = true
	}
	uid, ok := rec.Students[student]
	if !ok {
		uid, ok = s.adoptable(rec, student)
	}
	if !ok {
		if uid, err = s.next(rec); err != nil {
			return 0, err
		}
	}
	rec.Students[student] = uid
	if err := atomicfile.WriteJSON(rootdir.UIDs(s.root), rec); err != nil {
		return 0, fmt.Errorf("record uid %d of %s: %w", uid, student, err)
	}
	return uid, nil
}

// read returns the record, empty when there is none yet. A record that
// cannot be read is an error, never a fresh start: uids would be given
// twice.
func (s *Store) read() (record, error) {
	p := rootdir.UIDs(s.root)
	rec := record{Students: map[string]int{}}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		return record{}, fmt.Errorf("read %s: %w (restore it from a backup: nbh-sync never allocates without it, or a uid could go to two students)", p, err)
	}
	if rec.Students == nil {
		rec.Students = map[string]int{}
	}
	return rec, nil
}

// migrate adopts, once, the owner of every student folder of ROOT/students
// as that student's uid: folders made before the record (by spawns given a
// uid, by nbhosting) keep their owner, and no new student is given it.
func (s *Store) migrate(rec *record) {
	entries, err := os.ReadDir(filepath.Dir(rootdir.Student(s.root, "x")))
	if err != nil {
		return // no students yet
	}
	for _, e := range entries {
		if _, ok := rec.Students[e.Name()]; ok || !e.IsDir() {
			continue
		}
		if uid, ok := s.adoptable(*rec, e.Name()); ok {
			rec.Students[e.Name()] = uid
		}
	}
}

// adoptable returns the owner of student's folder when it may become the
// student's uid: at or above the floor (a folder made as root without a
// uid is not the student's), and no other student's.
func (s *Store) adoptable(rec record, student string) (int, bool) {
	fi, err := os.Stat(rootdir.Student(s.root, student))
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	uid := int(st.Uid)
	if uid < s.floor {
		return 0, false
	}
	for _, u := range rec.Students {
		if u == uid {
			return 0, false
		}
	}
	return uid, true
}

// next returns the uid after the highest recorded in the range (so that
// none is ever given twice, even once a student is gone), skipping those
// of host accounts.
func (s *Store) next(rec record) (int, error) {
	uid := max(s.r.First, s.floor)
	for _, u := range rec.Students {
		if u <= s.r.Last {
			uid = max(uid, u+1)
		}
	}
	for ; uid <= s.r.Last; uid++ {
		if !s.hostHas(uid) {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("students.uids %d-%d is used up (%d students recorded in %s): extend its end", s.r.First, s.r.Last, len(rec.Students), rootdir.UIDs(s.root))
}

// lock takes the exclusive file lock at path (created 0600, its folder
// 0700), waiting for another holder, and returns its release.
func lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
