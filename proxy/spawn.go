package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
)

// job is one on-demand spawn; requests for the same server share it.
type job struct {
	done  chan struct{}
	route Route
	err   error
	ended time.Time
}

// failedFor is how long a failed spawn's error is shown before the next
// request tries again (the starting page reloads every 2s).
const failedFor = 10 * time.Second

// start returns the running or recent spawn of k, starting one if needed.
func (p *Proxy) start(k Key) *job {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[k]; ok {
		select {
		case <-j.done:
			if j.err == nil || p.opts.Now().Sub(j.ended) > failedFor {
				break
			}
			return j
		default:
			return j
		}
	}
	j := &job{done: make(chan struct{})}
	p.jobs[k] = j
	if p.opts.Spawner == nil {
		j.err = errNoSpawner
		j.ended = p.opts.Now()
		close(j.done)
		return j
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.opts.SpawnTimeout)
		defer cancel()
		p.log.Info("starting a server for the front door", "course", k.Course, "student", k.Student)
		began := time.Now()
		rt, err := p.opts.Spawner.Spawn(ctx, k.Course, k.Student)
		p.obs.FrontDoorSpawn(spawnResult(err), time.Since(began))
		if err == nil {
			p.routes.Set(rt)
		} else {
			p.log.Warn("front door could not start a server", "course", k.Course, "student", k.Student, "err", err)
		}
		p.mu.Lock()
		j.route, j.err, j.ended = rt, err, p.opts.Now()
		if err == nil && p.jobs[k] == j {
			delete(p.jobs, k) // the table has it now
		}
		p.mu.Unlock()
		close(j.done)
	}()
	return j
}

var errNoSpawner = errors.New("no spawner")

// waitStart starts k's server and waits StartWait for it. When it is up
// in time, it returns its route; otherwise it has answered r itself (the
// starting page, or why it cannot start) and up is false.
func (p *Proxy) waitStart(w http.ResponseWriter, r *http.Request, k Key) (rt Route, up bool) {
	j := p.start(k)
	t := time.NewTimer(p.opts.StartWait)
	defer t.Stop()
	select {
	case <-j.done:
	case <-t.C:
		answer(w, r, http.StatusServiceUnavailable, page{Title: "Starting your server…",
			Message: "Your Jupyter server for " + k.Course + " is starting; this page reloads by itself.", Refresh: 2})
		return Route{}, false
	case <-r.Context().Done():
		return Route{}, false
	}
	switch err := j.err; {
	case err == nil:
		return j.route, true
	case errors.Is(err, containers.ErrArchived):
		answer(w, r, http.StatusGone, page{Title: "This course is archived",
			Message: "The course " + k.Course + " is archived: its servers are not started any more. Your files are kept; ask your teacher for them."})
	case errors.Is(err, containers.ErrUnknownCourse):
		answer(w, r, http.StatusNotFound, page{Title: "No such course",
			Message: "The course " + k.Course + " is not (or no longer) offered on this site. Your files are kept; ask your teacher for them."})
	case errors.Is(err, errNoSpawner):
		answer(w, r, http.StatusServiceUnavailable, page{Title: "Your server is not running",
			Message: "Open it again from your course page."})
	default:
		answer(w, r, http.StatusServiceUnavailable, page{Title: "Your server could not start",
			Message: "It will be tried again in a few seconds; if this lasts, tell the site's admins.", Refresh: int(failedFor / time.Second)})
	}
	return Route{}, false
}

// spawnResult names a spawn's outcome for the metrics.
func spawnResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, containers.ErrArchived):
		return "archived"
	case errors.Is(err, containers.ErrUnknownCourse):
		return "unknown-course"
	default:
		return "error"
	}
}
