package usage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/gob"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
)

// On disk, under the store's folder (rootdir.Usage):
//
//	students.txt   the dictionary: one student name a line, its id the line's
//	               number (from 0); only ever appended to
//	YYYY-MM.gob.gz one month: gzip of a gob of every (day, course) record,
//	               the student ids as deltas of the sorted set (small
//	               numbers, which gob writes in one byte each)
//
// Both are written whole through atomicfile, so a crash leaves the old or
// the new version; the dictionary is written before the months that use
// its new ids.

// diskRecord is a record as a month file keeps it.
type diskRecord struct {
	Day       Day
	Course    string
	Deltas    []uint32
	Sessions  int
	Notebooks int
	KernelSec float64
	Peak      int
	CPUSec    float64
	MemPeak   int64
	Disk      int64
	Top       []StudentBytes
	Slots     []uint16
}

const dictFile = "students.txt"

// monthOf numbers d's month: year*12 + month-1.
func monthOf(d Day) int {
	t := d.Time()
	return t.Year()*12 + int(t.Month()) - 1
}

func monthFile(dir string, m int) string {
	return filepath.Join(dir, fmt.Sprintf("%04d-%02d.gob.gz", m/12, m%12+1))
}

// Open opens the store kept in dir (created if missing), reading its
// dictionary; months are read when first needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("usage store: %w", err)
	}
	s := &Store{dir: dir, ids: map[string]uint32{}, days: map[Day]map[string]*record{}, months: map[int]bool{}, dirty: map[int]bool{}}
	b, err := os.ReadFile(filepath.Join(dir, dictFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("usage store: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		s.names = append(s.names, sc.Text())
		s.ids[sc.Text()] = uint32(len(s.names) - 1)
	}
	s.savedNames = len(s.names)
	return s, nil
}

// load reads month m if it is not in memory. A month that cannot be read
// is started afresh (and the error lost): usage figures are a record, not
// a reason to stop the daemon. s.mu held.
func (s *Store) load(m int) {
	if s.months[m] {
		return
	}
	s.months[m] = true
	f, err := os.Open(monthFile(s.dir, m))
	if err != nil {
		return
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return
	}
	var recs []diskRecord
	if gob.NewDecoder(zr).Decode(&recs) != nil {
		return
	}
	for _, dr := range recs {
		r := &record{sessions: dr.Sessions, notebooks: dr.Notebooks, kernelSec: dr.KernelSec, peak: dr.Peak,
			cpuSec: dr.CPUSec, memPeak: dr.MemPeak, disk: dr.Disk, top: dr.Top, slots: dr.Slots}
		var id uint32
		for i, delta := range dr.Deltas {
			if i == 0 {
				id = delta
			} else {
				id += delta
			}
			r.students = append(r.students, id)
		}
		if s.days[dr.Day] == nil {
			s.days[dr.Day] = map[string]*record{}
		}
		s.days[dr.Day][dr.Course] = r
	}
}

// Flush writes the dictionary when it grew and every month that changed.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) > s.savedNames {
		data := []byte(strings.Join(s.names, "\n") + "\n")
		if err := atomicfile.Write(filepath.Join(s.dir, dictFile), data); err != nil {
			return fmt.Errorf("usage store: %w", err)
		}
		s.savedNames = len(s.names)
	}
	var errs []error
	for _, m := range slices.Sorted(maps.Keys(s.dirty)) {
		if err := s.writeMonth(m); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(s.dirty, m)
	}
	return errors.Join(errs...)
}

func (s *Store) writeMonth(m int) error {
	var recs []diskRecord
	for _, d := range slices.Sorted(maps.Keys(s.days)) {
		if monthOf(d) != m {
			continue
		}
		for _, c := range slices.Sorted(maps.Keys(s.days[d])) {
			r := s.days[d][c]
			dr := diskRecord{Day: d, Course: c, Sessions: r.sessions, Notebooks: r.notebooks, KernelSec: r.kernelSec, Peak: r.peak,
				CPUSec: r.cpuSec, MemPeak: r.memPeak, Disk: r.disk, Top: r.top, Slots: r.slots, Deltas: make([]uint32, len(r.students))}
			prev := uint32(0)
			for i, id := range r.students {
				dr.Deltas[i] = id - prev
				prev = id
			}
			recs = append(recs, dr)
		}
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(recs); err != nil {
		return fmt.Errorf("usage store: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("usage store: %w", err)
	}
	if err := atomicfile.Write(monthFile(s.dir, m), buf.Bytes()); err != nil {
		return fmt.Errorf("usage store: %w", err)
	}
	return nil
}

// Size is the bytes the store takes on disk.
func (s *Store) Size() (int64, error) {
	var n int64
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n, nil
}
