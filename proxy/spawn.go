package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/nbhosting/nbh-sync/manifest"
)

// job is one on-demand spawn; requests for the same server share it.
type job struct {
	done  chan struct{}
	route Route
	err   error
	ended time.Time
}

// failedFor is how long a failed spawn's error is shown before the next
// page load tries again (the error page reloads after that long).
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

// WaitParam, on any path of a server, asks for a stream of server-sent
// events that says when the server's start has ended: the "starting" page
// listens to it and reloads then, instead of every few seconds.
const WaitParam = "nbh-wait"

// waitEvents streams, to a browser with a session for k, one "ready" event
// once no start of k's server is running — at once if none is. It starts
// nothing itself: like a script, it must not keep a server alive; the
// page load it was made for started the server, and its reload after the
// event says what came of it (the server, or why it did not start).
func (p *Proxy) waitEvents(w http.ResponseWriter, r *http.Request, k Key) {
	if r.Method != http.MethodGet || r.ContentLength != 0 {
		answer(w, r, http.StatusBadRequest, page{Title: "Bad request", Message: "Wait with a GET and no body."})
		return
	}
	rc := http.NewResponseController(w)
	// The request is read; the stream lasts as long as the start, which
	// SpawnTimeout bounds (an expired read deadline would end it).
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx in front: pass events as they come
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	done := p.starting(k)
	// A comment now and then keeps proxies in front from closing an idle
	// stream.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-done:
			_, _ = io.WriteString(w, "event: ready\ndata: \n\n")
			_ = rc.Flush()
			return
		case <-keep.C:
			if _, err := io.WriteString(w, ": starting\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// starting returns a channel closed when the running start of k's server
// ends: closed already when none runs.
func (p *Proxy) starting(k Key) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j, ok := p.jobs[k]; ok {
		return j.done
	}
	ended := make(chan struct{})
	close(ended)
	return ended
}

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
			Message: "Your Jupyter server for " + k.Course + " is starting; this page reloads by itself when it is ready.",
			Wait:    r.URL.EscapedPath() + "?" + WaitParam})
		return Route{}, false
	case <-r.Context().Done():
		return Route{}, false
	}
	switch err := j.err; {
	case err == nil:
		return j.route, true
	case errors.Is(err, manifest.ErrArchived):
		answer(w, r, http.StatusGone, page{Title: "This course is archived",
			Message: "The course " + k.Course + " is archived: its servers are not started any more. Your files are kept; ask your teacher for them."})
	case errors.Is(err, manifest.ErrUnknownCourse):
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
	case errors.Is(err, manifest.ErrArchived):
		return "archived"
	case errors.Is(err, manifest.ErrUnknownCourse):
		return "unknown-course"
	default:
		return "error"
	}
}
