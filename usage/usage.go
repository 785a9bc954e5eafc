// Package usage keeps what a site's students used, per course and per day:
// distinct students, sessions (servers handed out), notebooks opened,
// kernel hours, peak concurrent servers, CPU time, peak memory and the disk
// of the workspaces (with the largest few). It is the record an operator
// plans capacity and reports a term with, kept compactly under ROOT/state:
// exact distinct counts from sorted student ids of a dictionary (every
// name stored once), one file per month.
//
// Figures go in through four calls, each cheap enough for the path it is
// on: Session (a spawn), NotebookOpened (a page through the front door),
// Sample (each container pass) and Disk (now and then). Flush writes what
// changed; Query reads days back.
package usage

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/api"
)

// Day is a UTC calendar day, counted from 1970-01-01.
type Day int32

// DayOf is the UTC day of t.
func DayOf(t time.Time) Day { return Day(t.UTC().Unix() / 86400) }

// Time is the start of d, UTC.
func (d Day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String is d as 2006-01-02.
func (d Day) String() string { return d.Time().Format(time.DateOnly) }

// StudentBytes is one student's workspace size in a course.
type StudentBytes = api.StudentBytes

// Figures are one course's usage on one day: the API's document.
type Figures = api.UsageDay

// Server is one running server at a container pass.
type Server struct {
	Course, Student string
	Kernels         int
	// CPU is the CPU time it used since the previous look (0 unknown);
	// MemBytes its memory now (0 unknown).
	CPU      time.Duration
	MemBytes int64
}

// TopN is how many of the largest workspaces a day keeps per course.
const TopN = 5

// MaxGap caps the time a sample stands for: after a daemon was down for a
// night, the first pass does not count the night's kernels.
const MaxGap = 15 * time.Minute

// record is one course's day in memory.
type record struct {
	students  []uint32 // sorted ids
	sessions  int
	notebooks int
	kernelSec float64
	peak      int
	cpuSec    float64
	memPeak   int64
	disk      int64
	top       []StudentBytes
	slots     []uint16 // peak servers per quarter hour; nil when none ran
}

// Slots is the number of quarter hours of a day.
const Slots = 96

func slotOf(t time.Time) int {
	t = t.UTC()
	return (t.Hour()*60 + t.Minute()) / 15
}

func (r *record) add(id uint32) {
	i, found := slices.BinarySearch(r.students, id)
	if !found {
		r.students = slices.Insert(r.students, i, id)
	}
}

func (r *record) figures(d Day, course string) Figures {
	var servers []int
	for _, n := range r.slots {
		servers = append(servers, int(n))
	}
	return Figures{Servers: servers, Day: d.String(), Course: course, Students: len(r.students), Sessions: r.sessions, Notebooks: r.notebooks,
		KernelHours: r.kernelSec / 3600, PeakServers: r.peak, CPUHours: r.cpuSec / 3600, MemPeakBytes: r.memPeak,
		DiskBytes: r.disk, Top: slices.Clone(r.top)}
}

// Store is the usage record of one site. Its methods are safe for
// concurrent use.
type Store struct {
	dir string

	mu         sync.Mutex
	names      []string
	ids        map[string]uint32
	savedNames int                        // names already in the dictionary file
	days       map[Day]map[string]*record // the months loaded
	months     map[int]bool               // loaded (year*12+month)
	dirty      map[int]bool
	lastSample time.Time
}

// ID returns the dictionary id of a student, adding it. s.mu held.
func (s *Store) id(student string) uint32 {
	if id, ok := s.ids[student]; ok {
		return id
	}
	id := uint32(len(s.names))
	s.names = append(s.names, student)
	s.ids[student] = id
	return id
}

// rec returns the record of (day of t, course), loading its month. s.mu
// held.
func (s *Store) rec(t time.Time, course string) *record {
	d := DayOf(t)
	s.load(monthOf(d))
	s.dirty[monthOf(d)] = true
	m := s.days[d]
	if m == nil {
		m = map[string]*record{}
		s.days[d] = m
	}
	r := m[course]
	if r == nil {
		r = &record{}
		m[course] = r
	}
	return r
}

// Session counts a server handed out to student in course at t.
func (s *Store) Session(course, student string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(t, course)
	r.sessions++
	r.add(s.id(student))
}

// NotebookOpened counts a notebook page opened through the front door.
func (s *Store) NotebookOpened(course, student string, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(t, course)
	r.notebooks++
	r.add(s.id(student))
}

// Sample records the servers running at a container pass at t: the peak
// of concurrent servers and of memory per course, and kernel and CPU time
// since the previous sample (at most MaxGap of it). A student with a kernel
// counts as a student of the day.
func (s *Store) Sample(t time.Time, servers []Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gap := time.Duration(0)
	if !s.lastSample.IsZero() && t.After(s.lastSample) {
		gap = min(t.Sub(s.lastSample), MaxGap)
	}
	s.lastSample = t
	type sum struct {
		n   int
		mem int64
	}
	per := map[string]*sum{}
	for _, sv := range servers {
		x := per[sv.Course]
		if x == nil {
			x = &sum{}
			per[sv.Course] = x
		}
		x.n++
		x.mem += sv.MemBytes
		r := s.rec(t, sv.Course)
		r.kernelSec += float64(sv.Kernels) * gap.Seconds()
		r.cpuSec += sv.CPU.Seconds()
		if sv.Kernels > 0 {
			r.add(s.id(sv.Student))
		}
	}
	for course, x := range per {
		r := s.rec(t, course)
		r.peak = max(r.peak, x.n)
		r.memPeak = max(r.memPeak, x.mem)
		if r.slots == nil {
			r.slots = make([]uint16, Slots)
		}
		i := slotOf(t)
		r.slots[i] = max(r.slots[i], uint16(min(x.n, 65535)))
	}
}

// Disk records the size of a course's workspaces at t: the total and the
// largest TopN (sizes is every student's).
func (s *Store) Disk(t time.Time, course string, sizes map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rec(t, course)
	r.disk, r.top = 0, nil
	for _, name := range slices.Sorted(maps.Keys(sizes)) {
		r.disk += sizes[name]
		r.top = append(r.top, StudentBytes{Student: name, Bytes: sizes[name]})
	}
	slices.SortStableFunc(r.top, func(a, b StudentBytes) int { return cmp.Compare(b.Bytes, a.Bytes) })
	if len(r.top) > TopN {
		r.top = r.top[:TopN]
	}
}

// Query returns the figures of the days from..to (inclusive) of course
// ("" every course), by day then course. Days without use are absent.
func (s *Store) Query(course string, from, to Day) []Figures {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := monthOf(from); m <= monthOf(to); m++ {
		s.load(m)
	}
	var out []Figures
	for _, d := range slices.Sorted(maps.Keys(s.days)) {
		if d < from || d > to {
			continue
		}
		m := s.days[d]
		for _, c := range slices.Sorted(maps.Keys(m)) {
			if course == "" || c == course {
				out = append(out, m[c].figures(d, c))
			}
		}
	}
	return out
}

// Students returns the distinct students of course over from..to: the
// union of the days' sets, which a sum of daily counts would overcount.
func (s *Store) Students(course string, from, to Day) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := monthOf(from); m <= monthOf(to); m++ {
		s.load(m)
	}
	seen := map[uint32]struct{}{}
	for d, m := range s.days {
		if d < from || d > to {
			continue
		}
		for c, r := range m {
			if course == "" || c == course {
				for _, id := range r.students {
					seen[id] = struct{}{}
				}
			}
		}
	}
	return len(seen)
}
