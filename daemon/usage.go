package daemon

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/usage"
)

// diskEvery is how often the workspaces are measured for the usage
// record: a walk of every student's files is not for every pass.
const diskEvery = time.Hour

// usageRecorder feeds the daemon's usage store: sessions from spawns,
// notebooks from the front door, samples from the container passes, the
// disk of the workspaces now and then. Every call is cheap, and none fails
// what it records.
type usageRecorder struct {
	d        *daemon
	store    *usage.Store
	lastDisk atomic.Int64 // unix seconds of the last disk walk
	walking  atomic.Bool
}

func (u *usageRecorder) session(course, student string) {
	if u != nil {
		u.store.Session(course, student, time.Now())
	}
}

// NotebookOpened implements proxy.UsageSink.
func (u *usageRecorder) NotebookOpened(course, student string) {
	u.store.NotebookOpened(course, student, time.Now())
}

// sampled is the site's Sampled: the running servers of a pass, with their
// kernels, CPU since the previous look and memory (read from the cgroup
// when the engine runs here).
func (u *usageRecorder) sampled(cs []containers.Container, act map[string]activity.Result, at time.Time) {
	var servers []usage.Server
	for _, c := range cs {
		if c.State != containers.Running {
			continue
		}
		sv := usage.Server{Course: c.Course, Student: c.Student}
		if r, ok := act[c.ID]; ok {
			sv.Kernels = r.Kernels
			if r.CPU != nil && !r.CPU.SinceStart {
				sv.CPU = time.Duration(r.CPU.Percent / 100 * float64(r.CPU.Over))
			}
		}
		sv.MemBytes, _ = activity.Cgroup{}.MemoryBytes(c.ID)
		servers = append(servers, sv)
	}
	u.store.Sample(at, servers)
	if err := u.store.Flush(); err != nil {
		u.d.log.Warn("usage not recorded", "err", err)
	}
	if time.Since(time.Unix(u.lastDisk.Load(), 0)) >= diskEvery && u.walking.CompareAndSwap(false, true) {
		u.lastDisk.Store(time.Now().Unix())
		go func() {
			defer u.walking.Store(false)
			u.disk()
		}()
	}
}

// disk measures every workspace, ROOT/students/STUDENT/COURSE, and records
// each course's total and largest.
func (u *usageRecorder) disk() {
	per := map[string]map[string]int64{}
	dirs, _ := filepath.Glob(filepath.Join(rootdir.Student(u.d.opts.Root, "*"), "*"))
	for _, dir := range dirs {
		course, student := filepath.Base(dir), filepath.Base(filepath.Dir(dir))
		if per[course] == nil {
			per[course] = map[string]int64{}
		}
		per[course][student] = dirBytes(dir)
	}
	now := time.Now()
	for course, sizes := range per {
		u.store.Disk(now, course, sizes)
	}
	if err := u.store.Flush(); err != nil {
		u.d.log.Warn("usage not recorded", "err", err)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Usage implements server.UsageSource.
func (u *usageRecorder) Usage(_ context.Context, course string, days int) (api.Usage, error) {
	to := usage.DayOf(time.Now())
	from := to - usage.Day(days-1)
	out := api.Usage{From: from.String(), To: to.String(), Days: u.store.Query(course, from, to), Students: map[string]int{}}
	for _, d := range out.Days {
		if _, ok := out.Students[d.Course]; !ok {
			out.Students[d.Course] = u.store.Students(d.Course, from, to)
		}
	}
	return out, nil
}
