package containers

import (
	"context"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/naming"
)

// Locks serializes work on one student's container within the process: a
// spawn holds the lock of (course, student) until the container is handed
// out, and the container pass takes it before any destructive action. It
// also remembers when each container was last handed out, so that a pass
// planned before a hand-out does not act on stale observations.
type Locks struct {
	mu      sync.Mutex
	entries map[string]*lockEntry
}

type lockEntry struct {
	ch      chan struct{} // holds a token while locked
	users   int           // holders and waiters; the entry goes at 0
	handout time.Time
}

// NewLocks returns an empty registry.
func NewLocks() *Locks { return &Locks{entries: map[string]*lockEntry{}} }

func lockKey(course, student string) string { return naming.Container(course, student) }

// Lock waits for the lock of (course, student), or for ctx to end. The
// returned func releases it; call it exactly once.
func (l *Locks) Lock(ctx context.Context, course, student string) (unlock func(), err error) {
	k := lockKey(course, student)
	l.mu.Lock()
	e := l.entries[k]
	if e == nil {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		l.entries[k] = e
	}
	e.users++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.release(k, e) }, nil
	case <-ctx.Done():
		l.release(k, e)
		return nil, ctx.Err()
	}
}

func (l *Locks) release(k string, e *lockEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.users--
	// Keep entries that remember a recent hand-out; drop idle ones so the
	// map does not grow with every student ever seen.
	if e.users == 0 && time.Since(e.handout) > time.Hour {
		delete(l.entries, k)
	}
}

// MarkHandedOut records that the container of (course, student) was handed
// out at t. Call it while holding the lock.
func (l *Locks) MarkHandedOut(course, student string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lockKey(course, student)
	e := l.entries[k]
	if e == nil {
		e = &lockEntry{ch: make(chan struct{}, 1)}
		l.entries[k] = e
	}
	if t.After(e.handout) {
		e.handout = t
	}
}

// HandedOut returns when the container of (course, student) was last handed
// out by this process (zero if never, or more than an hour ago).
func (l *Locks) HandedOut(course, student string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[lockKey(course, student)]; e != nil {
		return e.handout
	}
	return time.Time{}
}
