// Package trigger schedules the daemon's level-triggered passes.
//
// A trigger carries no data beyond the kinds of work it asks for: every pass
// reads the whole desired and observed state itself. Triggers for one key
// (a course, or any name the caller picks for site-wide work) are coalesced —
// a burst of them becomes a single pending pass whose kinds are the union of
// what was asked — and passes of one key never overlap, while different keys
// run concurrently up to a bound. Cron schedules (Scheduler) are one more
// source of triggers.
package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nbhosting/nbh-sync/internal/logctx"
	"github.com/nbhosting/nbh-sync/retry"
)

// Kinds is a set of kinds of work a pass is asked to do.
type Kinds uint8

// The kinds of work; a pass may be asked for several at once.
const (
	// Pull fetches the repos (and builds what changed).
	Pull Kinds = 1 << iota
	// Reconcile runs the container pass.
	Reconcile
	// Rebuild forces a no-cache rebuild of the images.
	Rebuild

	// Sync is a full pass: pull then reconcile.
	Sync = Pull | Reconcile
)

var kindNames = []struct {
	k    Kinds
	name string
}{{Pull, "pull"}, {Reconcile, "reconcile"}, {Rebuild, "rebuild"}}

// Has reports whether every kind of o is in k.
func (k Kinds) Has(o Kinds) bool { return k&o == o && o != 0 }

// String lists the kinds, e.g. "pull+reconcile".
func (k Kinds) String() string {
	var parts []string
	for _, kn := range kindNames {
		if k&kn.k != 0 {
			parts = append(parts, kn.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// ParseKind parses one kind name ("pull", "reconcile", "rebuild", "sync").
func ParseKind(s string) (Kinds, error) {
	if s == "sync" {
		return Sync, nil
	}
	for _, kn := range kindNames {
		if kn.name == s {
			return kn.k, nil
		}
	}
	return 0, fmt.Errorf("unknown pass kind %q (want pull, reconcile, rebuild or sync)", s)
}

// Pass describes one run of the pass function.
type Pass struct {
	// ID is unique within the Queue; put it in every log line of the pass.
	ID uint64
	// Key is the key the triggers named.
	Key string
	// Kinds is the union of the kinds of the coalesced triggers.
	Kinds Kinds
	// Reasons are the distinct reasons given by those triggers, in order.
	Reasons []string
}

// PassFunc does the work of one pass. ctx is cancelled at the pass timeout
// and when a graceful stop runs out of patience; the function must return
// soon after.
type PassFunc func(ctx context.Context, p Pass) error

// PanicError is the error of a pass whose function panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("pass panicked: %v", e.Value) }

// ErrTimeout wraps the error of a pass that ran out of time.
var ErrTimeout = errors.New("pass timed out")

// Defaults of Options.
const (
	DefaultConcurrency = 2
	DefaultTimeout     = time.Hour
	DefaultGrace       = 30 * time.Second
	DefaultAbandon     = 5 * time.Second
)

// Options tune a Queue; zero values take the defaults.
type Options struct {
	// Concurrency bounds the passes running at once, all keys together.
	Concurrency int
	// Timeout bounds one pass.
	Timeout time.Duration
	// Grace is how long a stop lets running passes finish before it
	// cancels them.
	Grace time.Duration
	// Abandon is how long a stop waits for cancelled passes to return
	// before it gives up on them.
	Abandon time.Duration
	// RetryBase is the wait before a failed pass is asked for again,
	// when its error says a retry may succeed (package retry: a transient
	// failure); it doubles with each failure of the key in a row, up to
	// RetryMax. An error that names a time (a remote's backoff) waits
	// until then, within the same bounds; one that only new inputs fix is
	// not retried. Zero: failed passes wait for the next trigger.
	RetryBase time.Duration
	RetryMax  time.Duration
	// Done, if set, is called after each pass with its outcome and
	// duration (for metrics and history). It runs on the pass's goroutine.
	Done   func(p Pass, err error, d time.Duration)
	Logger *slog.Logger
}

// slot is the pending state of one key: the kinds asked since the last pass
// started, and a capacity-1 wake-up channel.
type slot struct {
	key     string
	wake    chan struct{}
	mu      sync.Mutex
	kinds   Kinds
	reasons []string
	started bool // a worker goroutine serves this slot
	// failures counts the key's failed passes in a row; retry is the
	// timer that asks for the next try.
	failures int
	retry    *time.Timer
}

// Queue coalesces triggers into passes; see the package doc.
type Queue struct {
	run  PassFunc
	opt  Options
	log  *slog.Logger
	sem  chan struct{}
	quit chan struct{} // closed when the Queue stops accepting work
	// spawn wakes Run to start workers for new keys (capacity 1, like the
	// slots' channels).
	spawn chan struct{}

	mu      sync.Mutex
	slots   map[string]*slot
	running bool
	stopped bool

	ids     atomic.Uint64
	active  atomic.Int64
	workers sync.WaitGroup
}

// New returns a Queue that runs fn for each pass once Run is called.
func New(fn PassFunc, opt Options) *Queue {
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Grace <= 0 {
		opt.Grace = DefaultGrace
	}
	if opt.Abandon <= 0 {
		opt.Abandon = DefaultAbandon
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	opt.RetryMax = max(opt.RetryMax, opt.RetryBase)
	return &Queue{
		run:   fn,
		opt:   opt,
		log:   opt.Logger,
		sem:   make(chan struct{}, opt.Concurrency),
		quit:  make(chan struct{}),
		spawn: make(chan struct{}, 1),
		slots: map[string]*slot{},
	}
}

// Trigger asks for a pass of key doing kinds, for the given reason (e.g.
// "webhook github", "cron pull"). It never blocks. It returns true when this
// created a new pending pass and false when it joined one already pending
// (or the Queue is stopped). Triggers before Run wait for Run.
func (q *Queue) Trigger(key string, kinds Kinds, reason string) bool {
	if kinds == 0 {
		return false
	}
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return false
	}
	s := q.slots[key]
	if s == nil {
		s = &slot{key: key, wake: make(chan struct{}, 1)}
		q.slots[key] = s
	}
	q.mu.Unlock()

	s.mu.Lock()
	fresh := s.kinds == 0
	s.kinds |= kinds
	if reason != "" && len(s.reasons) < 16 && !contains(s.reasons, reason) {
		s.reasons = append(s.reasons, reason)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending: this trigger joins it
	}
	select {
	case q.spawn <- struct{}{}:
	default:
	}
	return fresh
}

// Pending returns the kinds waiting for key's next pass.
func (q *Queue) Pending(key string) Kinds {
	q.mu.Lock()
	s := q.slots[key]
	q.mu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kinds
}

// Active returns the number of passes running now.
func (q *Queue) Active() int { return int(q.active.Load()) }

// Run runs passes until ctx is cancelled, then stops gracefully: no new
// pass starts (pending ones are dropped: they are level-triggered and the
// next start redoes them), running passes get Options.Grace to finish and
// are then cancelled, and Run waits up to Options.Abandon more for them.
// It returns nil after a clean stop and an error naming what was cancelled
// or abandoned otherwise. Run may be called once.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	if q.running || q.stopped {
		q.mu.Unlock()
		return errors.New("trigger queue: Run called twice")
	}
	q.running = true
	q.mu.Unlock()

	// Passes must outlive ctx by the grace period, so they get their own
	// context, cancelled only when the grace runs out.
	passCtx, cancelPasses := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPasses()

	for {
		q.startWorkers(passCtx)
		select {
		case <-q.spawn:
		case <-ctx.Done():
			return q.stop(cancelPasses)
		}
	}
}

func (q *Queue) startWorkers(ctx context.Context) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, s := range q.slots {
		if !s.started {
			s.started = true
			q.workers.Add(1)
			go q.worker(ctx, s)
		}
	}
}

func (q *Queue) stop(cancelPasses context.CancelFunc) error {
	q.mu.Lock()
	q.stopped = true
	var dropped []string
	for _, s := range q.slots {
		s.mu.Lock()
		if s.kinds != 0 {
			dropped = append(dropped, s.key)
		}
		if s.retry != nil {
			s.retry.Stop()
		}
		s.mu.Unlock()
	}
	q.mu.Unlock()
	close(q.quit)
	sort.Strings(dropped)
	q.log.Info("stopping passes", "running", q.Active(), "dropped_pending", dropped, "grace", q.opt.Grace)

	done := make(chan struct{})
	go func() { q.workers.Wait(); close(done) }()
	grace := time.NewTimer(q.opt.Grace)
	defer grace.Stop()
	select {
	case <-done:
		return nil
	case <-grace.C:
	}
	n := q.Active()
	q.log.Warn("grace period over, cancelling passes", "running", n)
	cancelPasses()
	abandon := time.NewTimer(q.opt.Abandon)
	defer abandon.Stop()
	select {
	case <-done:
		return fmt.Errorf("trigger queue: %d pass(es) cancelled after the %s grace period", n, q.opt.Grace)
	case <-abandon.C:
		return fmt.Errorf("trigger queue: %d pass(es) did not return after cancellation; abandoned", q.Active())
	}
}

// worker serves one key: at most one pass of it at a time.
func (q *Queue) worker(ctx context.Context, s *slot) {
	defer q.workers.Done()
	for {
		select {
		case <-q.quit:
			return
		case <-s.wake:
		}
		// A stop may race the wake-up; stopping wins.
		select {
		case <-q.quit:
			return
		case q.sem <- struct{}{}:
		}
		select {
		case <-q.quit:
			<-q.sem
			return
		default:
		}
		// Take the pending work only now, so that triggers that came in
		// while waiting for the semaphore join this pass.
		s.mu.Lock()
		p := Pass{Key: s.key, Kinds: s.kinds, Reasons: s.reasons}
		s.kinds, s.reasons = 0, nil
		s.mu.Unlock()
		if p.Kinds != 0 {
			p.ID = q.ids.Add(1)
			q.pass(ctx, s, p)
		}
		<-q.sem
	}
}

func (q *Queue) pass(ctx context.Context, s *slot, p Pass) {
	q.active.Add(1)
	defer q.active.Add(-1)
	// Every line logged during the pass, by any package, names it
	// (logctx.Handler, the ...Context methods of slog).
	ctx = logctx.With(ctx, slog.Uint64("pass", p.ID))
	q.log.InfoContext(ctx, "pass", "key", p.Key, "kinds", p.Kinds.String(), "reasons", p.Reasons)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, q.opt.Timeout)
	defer cancel()
	err := q.safeRun(ctx, p)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w after %s: %w", ErrTimeout, q.opt.Timeout, err)
	}
	d := time.Since(start)
	// The pass's error is logged here, once: the pass function returns
	// it and logs none of it.
	if err != nil {
		q.log.WarnContext(ctx, "pass finished with errors", "duration", d.Round(time.Millisecond), "retry", q.retryLater(s, p, err), "err", err)
	} else {
		s.mu.Lock()
		s.failures = 0
		if s.retry != nil {
			s.retry.Stop() // whatever it was to retry is done
		}
		s.mu.Unlock()
		q.log.InfoContext(ctx, "pass finished", "duration", d.Round(time.Millisecond))
	}
	if q.opt.Done != nil {
		q.opt.Done(p, err, d)
	}
}

// retryLater asks for the pass again after it failed with err, as err
// says (package retry), and returns when, in words, for the log.
func (q *Queue) retryLater(s *slot, p Pass, err error) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	switch {
	case errors.Is(err, context.Canceled):
		return "at the next start" // cut short by a stop, which redoes it
	case q.opt.RetryBase <= 0:
		return "at the next trigger"
	}
	var d time.Duration
	switch v := retry.Of(err); v.Kind {
	case retry.OnChange:
		return v.Kind.String() // "on new inputs"
	case retry.Later:
		d = time.Until(v.At)
	default:
		d = q.opt.RetryBase << min(s.failures-1, 20)
	}
	d = min(max(d, q.opt.RetryBase), q.opt.RetryMax)
	if s.retry != nil {
		s.retry.Stop()
	}
	s.retry = time.AfterFunc(d, func() { q.Trigger(p.Key, p.Kinds, "retry after error") })
	return "in " + d.Round(time.Second).String()
}

// safeRun turns a panic of the pass function into an error, so that one
// bad pass never takes the daemon down.
func (q *Queue) safeRun(ctx context.Context, p Pass) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return q.run(ctx, p)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
