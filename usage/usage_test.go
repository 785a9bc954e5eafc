package usage

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// start is a Monday, the term's first day.
var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// oracleDay is one course's day as the oracle counts it, apart from the
// store: a map for the set, plain sums.
type oracleDay struct {
	students            map[string]bool
	sessions, notebooks int
	kernelSec           float64
	peak                int
	slots               []int
}

// term simulates days of a site of n students in courses, as a test clock
// moves: each student comes on some days (more on weekdays), has one or
// two sessions, opens notebooks and runs a kernel for a while; a container
// pass samples the running servers every 15 minutes. It feeds the store
// and returns the oracle's figures by day and course.
func term(s *Store, n, days int, courses []string, seed uint64) map[Day]map[string]*oracleDay {
	rng := rand.New(rand.NewPCG(seed, 1))
	oracle := map[Day]map[string]*oracleDay{}
	get := func(t time.Time, c string) *oracleDay {
		d := DayOf(t)
		if oracle[d] == nil {
			oracle[d] = map[string]*oracleDay{}
		}
		if oracle[d][c] == nil {
			oracle[d][c] = &oracleDay{students: map[string]bool{}}
		}
		return oracle[d][c]
	}
	type visit struct {
		course, student string
		from, to        time.Time
		kernels         int
	}
	for day := range days {
		t0 := start.AddDate(0, 0, day)
		p := 0.25
		if wd := t0.Weekday(); wd == time.Saturday || wd == time.Sunday {
			p = 0.05
		}
		var visits []visit
		for i := range n {
			if rng.Float64() >= p {
				continue
			}
			student := fmt.Sprintf("s%05d", i)
			course := courses[i%len(courses)]
			for range 1 + rng.IntN(2) {
				from := t0.Add(time.Duration(8*60+rng.IntN(12*60)) * time.Minute)
				v := visit{course: course, student: student, from: from, to: from.Add(time.Duration(15+rng.IntN(120)) * time.Minute), kernels: rng.IntN(3)}
				visits = append(visits, v)
				s.Session(course, student, from)
				o := get(from, course)
				o.sessions++
				o.students[student] = true
				for range rng.IntN(4) {
					s.NotebookOpened(course, student, from.Add(time.Minute))
					o.notebooks++
				}
			}
		}
		// The container passes of the day, every 15 minutes.
		for tick := t0; tick.Before(t0.Add(24 * time.Hour)); tick = tick.Add(15 * time.Minute) {
			var servers []Server
			count := map[string]int{}
			for _, v := range visits {
				if !tick.Before(v.from) && tick.Before(v.to) {
					servers = append(servers, Server{Course: v.course, Student: v.student, Kernels: v.kernels})
					count[v.course]++
					o := get(tick, v.course)
					if day > 0 || tick.After(t0) { // the first sample of all has no gap
						o.kernelSec += float64(v.kernels) * (15 * time.Minute).Seconds()
					}
					if v.kernels > 0 {
						o.students[v.student] = true
					}
				}
			}
			for c, k := range count {
				o := get(tick, c)
				o.peak = max(o.peak, k)
				if o.slots == nil {
					o.slots = make([]int, 96)
				}
				slot := (tick.Hour()*60 + tick.Minute()) / 15
				o.slots[slot] = max(o.slots[slot], k)
			}
			s.Sample(tick, servers)
		}
	}
	return oracle
}

func compare(t *testing.T, s *Store, oracle map[Day]map[string]*oracleDay, days int) {
	t.Helper()
	got := s.Query("", DayOf(start), DayOf(start)+Day(days))
	n := 0
	for _, f := range got {
		d, err := time.Parse(time.DateOnly, f.Day)
		if err != nil {
			t.Fatal(err)
		}
		o := oracle[DayOf(d)][f.Course]
		if o == nil {
			t.Errorf("%s %s: figures %+v, the oracle has none", f.Day, f.Course, f)
			continue
		}
		n++
		want := Figures{Day: f.Day, Course: f.Course, Students: len(o.students), Sessions: o.sessions, Notebooks: o.notebooks,
			KernelHours: o.kernelSec / 3600, PeakServers: o.peak, Servers: o.slots}
		if !reflect.DeepEqual(f, want) {
			t.Errorf("%s %s:\n got  %+v\n want %+v", f.Day, f.Course, f, want)
		}
	}
	want := 0
	for _, m := range oracle {
		want += len(m)
	}
	if n != want {
		t.Errorf("%d course-days in the store, the oracle has %d", n, want)
	}
}

// A simulated term — 1,000 students, 90 days of sessions on a test
// clock — gives, day by day and course by course, the oracle's figures;
// again after a flush and a reopen; and the term's distinct students are
// the union of the days', not their sum.
func TestTermMatchesOracle(t *testing.T) {
	const n, days = 1000, 90
	courses := []string{"algo", "data", "intro", "python"}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	oracle := term(s, n, days, courses, 26)
	fed := time.Since(began)
	compare(t, s, oracle, days)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	size, _ := s.Size()
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, s2, oracle, days)
	for _, c := range courses {
		union := map[string]bool{}
		for _, m := range oracle {
			if o := m[c]; o != nil {
				for st := range o.students {
					union[st] = true
				}
			}
		}
		if got := s2.Students(c, DayOf(start), DayOf(start)+days); got != len(union) {
			t.Errorf("%s: %d distinct students over the term, want %d", c, got, len(union))
		}
	}
	q := time.Now()
	figs := s2.Query("", DayOf(start), DayOf(start)+days)
	t.Logf("term of %d students, %d days, %d courses: %d course-days; fed in %s; %d bytes on disk; a query of the whole term %s",
		n, days, len(courses), len(figs), fed.Round(time.Millisecond), size, time.Since(q).Round(time.Microsecond))
}

// A year of a 10,000-student site fits in a few MB: every student comes
// on a quarter of the weekdays to one of 20 courses.
func TestYearSize(t *testing.T) {
	if testing.Short() {
		t.Skip("a year of sessions")
	}
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sessions := 0
	for day := range 365 {
		t0 := start.AddDate(0, 0, day)
		if wd := t0.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		for i := range 10000 {
			if rng.Float64() < 0.25 {
				s.Session(fmt.Sprintf("course%02d", i%20), fmt.Sprintf("student%05d", i), t0.Add(10*time.Hour))
				sessions++
			}
		}
		s.Sample(t0.Add(12*time.Hour), nil)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	size, _ := s.Size()
	t.Logf("a year, 10,000 students, 20 courses, %d sessions: %d bytes (%.2f MB)", sessions, size, float64(size)/1e6)
	if size > 8<<20 {
		t.Errorf("a year takes %d bytes, want a few MB", size)
	}
}

// Disk keeps the total and the largest few; Sample caps the time one
// sample stands for.
func TestDiskAndGap(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for i := range 8 {
		sizes[fmt.Sprintf("s%d", i)] = int64(i * 100)
	}
	s.Disk(start, "c", sizes)
	s.Sample(start, []Server{{Course: "c", Student: "a", Kernels: 1}})
	s.Sample(start.Add(10*time.Hour), []Server{{Course: "c", Student: "a", Kernels: 1}})
	f := s.Query("c", DayOf(start), DayOf(start))
	if len(f) != 1 {
		t.Fatalf("figures: %+v", f)
	}
	var top []string
	for _, sb := range f[0].Top {
		top = append(top, sb.Student)
	}
	if f[0].DiskBytes != 2800 || !slices.Equal(top, []string{"s7", "s6", "s5", "s4", "s3"}) {
		t.Errorf("disk %d, top %v", f[0].DiskBytes, top)
	}
	if f[0].KernelHours != MaxGap.Hours() {
		t.Errorf("kernel hours %v after a 10h gap, want %v (MaxGap)", f[0].KernelHours, MaxGap.Hours())
	}
}

// The Prometheus series are per course: as many as the courses, whatever
// the number of students.
func TestCollectorCardinality(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		s.Session(fmt.Sprintf("c%d", i%3), fmt.Sprintf("s%d", i), start.Add(time.Hour))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s, func() time.Time { return start.Add(2 * time.Hour) }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 8 {
		t.Errorf("%d metric families, want 8", len(mfs))
	}
	for _, mf := range mfs {
		if n := len(mf.GetMetric()); n != 3 {
			t.Errorf("%s: %d series, want 3 (one per course)", mf.GetName(), n)
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "course" {
				t.Errorf("%s: labels %v, want course only", mf.GetName(), m.GetLabel())
			}
		}
		if mf.GetName() == "nbh_sync_usage_students" {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			if sum != 500 {
				t.Errorf("students today: %v, want 500", sum)
			}
		}
	}
}
