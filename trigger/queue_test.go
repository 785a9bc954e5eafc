package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/logctx"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/retry"
)

// recorder collects the outcome of every pass through Options.Done.
type recorder struct {
	mu     sync.Mutex
	passes []Pass
	errs   []error
}

func (r *recorder) done(p Pass, err error, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passes = append(r.passes, p)
	r.errs = append(r.errs, err)
}

func (r *recorder) n() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.passes) }

func (r *recorder) get(i int) (Pass, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passes[i], r.errs[i]
}

// start runs q until the test ends and returns a stop function that cancels
// Run and returns its error.
func start(t *testing.T, q *Queue) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- q.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestKinds(t *testing.T) {
	tests := []struct {
		in   string
		want Kinds
		str  string
	}{
		{"pull", Pull, "pull"},
		{"reconcile", Reconcile, "reconcile"},
		{"rebuild", Rebuild, "rebuild"},
		{"sync", Sync, "pull+reconcile"},
	}
	for _, tt := range tests {
		got, err := ParseKind(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseKind(%q) = %v (%s), %v", tt.in, got, got, err)
		}
	}
	if _, err := ParseKind("bogus"); err == nil {
		t.Error("ParseKind(bogus) succeeded")
	}
	if Kinds(0).String() != "none" || !Sync.Has(Pull) || Pull.Has(Sync) {
		t.Error("Has/String of edge cases")
	}
}

func TestBurstBeforeRunIsOnePass(t *testing.T) {
	rec := &recorder{}
	q := New(func(context.Context, Pass) error { return nil }, Options{Done: rec.done})
	fresh := 0
	for i := 0; i < 100; i++ {
		if q.Trigger("a", Pull, "poll") {
			fresh++
		}
	}
	q.Trigger("a", Rebuild, "cron rebuild")
	if fresh != 1 {
		t.Errorf("%d triggers reported a new pending pass, want 1", fresh)
	}
	if got := q.Pending("a"); got != Pull|Rebuild {
		t.Errorf("Pending = %s", got)
	}
	start(t, q)
	testenv.WaitFor(t, 10*time.Second, "the pass", func() bool { return rec.n() == 1 })
	p, _ := rec.get(0)
	if p.Kinds != Pull|Rebuild || strings.Join(p.Reasons, ",") != "poll,cron rebuild" {
		t.Errorf("pass = %+v", p)
	}
	if q.Pending("a") != 0 {
		t.Error("work still pending after the pass")
	}
}

func TestBurstDuringPassIsOneMorePass(t *testing.T) {
	rec := &recorder{}
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	q := New(func(ctx context.Context, p Pass) error {
		entered <- struct{}{}
		if p.ID == 1 {
			<-release
		}
		return nil
	}, Options{Done: rec.done})
	start(t, q)
	q.Trigger("a", Pull, "first")
	<-entered
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				q.Trigger("a", Reconcile, fmt.Sprint("burst ", g%2))
			}
		}()
	}
	wg.Wait()
	close(release)
	testenv.WaitFor(t, 10*time.Second, "two passes", func() bool { return rec.n() == 2 })
	// Nothing else is pending, so no third pass can come.
	if q.Pending("a") != 0 {
		t.Fatalf("pending after burst: %s", q.Pending("a"))
	}
	if q.Active() != 0 {
		testenv.WaitFor(t, 10*time.Second, "idle", func() bool { return q.Active() == 0 })
	}
	if rec.n() != 2 {
		t.Fatalf("%d passes, want 2", rec.n())
	}
	p, _ := rec.get(1)
	if p.Kinds != Reconcile || len(p.Reasons) != 2 {
		t.Errorf("coalesced pass = %+v", p)
	}
}

func TestPerKeySerializedKeysConcurrent(t *testing.T) {
	const keys = 4
	var inFlight [keys]atomic.Int32
	var overlap atomic.Bool
	var total, maxTotal atomic.Int32
	rec := &recorder{}
	q := New(func(ctx context.Context, p Pass) error {
		k := int(p.Key[0] - 'a')
		if inFlight[k].Add(1) > 1 {
			overlap.Store(true)
		}
		n := total.Add(1)
		for {
			m := maxTotal.Load()
			if n <= m || maxTotal.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // hold the slot so that passes meet
		total.Add(-1)
		inFlight[k].Add(-1)
		return nil
	}, Options{Concurrency: keys, Done: rec.done})
	start(t, q)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				q.Trigger(string(rune('a'+(i+g)%keys)), Pull, "")
			}
		}()
	}
	wg.Wait()
	testenv.WaitFor(t, 10*time.Second, "quiet", func() bool {
		for k := 0; k < keys; k++ {
			if q.Pending(string(rune('a'+k))) != 0 {
				return false
			}
		}
		return q.Active() == 0
	})
	if overlap.Load() {
		t.Error("two passes of one key overlapped")
	}
	if rec.n() < keys {
		t.Errorf("%d passes for %d keys", rec.n(), keys)
	}
	t.Logf("%d passes for 1600 triggers, at most %d at once", rec.n(), maxTotal.Load())
}

func TestConcurrencyBound(t *testing.T) {
	const bound, keys = 2, 5
	var running, peak atomic.Int32
	release := make(chan struct{})
	rec := &recorder{}
	q := New(func(ctx context.Context, p Pass) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		return nil
	}, Options{Concurrency: bound, Done: rec.done})
	start(t, q)
	for k := 0; k < keys; k++ {
		q.Trigger(fmt.Sprint("course-", k), Reconcile, "")
	}
	testenv.WaitFor(t, 10*time.Second, "the bound reached", func() bool { return q.Active() == bound })
	// Give the other workers every chance to exceed the bound.
	for i := 0; i < 50; i++ {
		if q.Active() > bound {
			t.Fatalf("%d passes running, bound is %d", q.Active(), bound)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, "all passes", func() bool { return rec.n() == keys })
	if peak.Load() != bound {
		t.Errorf("peak concurrency %d, want %d", peak.Load(), bound)
	}
}

func TestPanicIsReportedAndQueueGoesOn(t *testing.T) {
	rec := &recorder{}
	q := New(func(ctx context.Context, p Pass) error {
		if p.ID == 1 {
			panic("kaboom")
		}
		return nil
	}, Options{Done: rec.done})
	start(t, q)
	q.Trigger("a", Pull, "")
	testenv.WaitFor(t, 10*time.Second, "the panicking pass", func() bool { return rec.n() == 1 })
	_, err := rec.get(0)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "kaboom" || !strings.Contains(string(pe.Stack), "queue_test.go") {
		t.Fatalf("err = %v, want a PanicError with a stack", err)
	}
	q.Trigger("a", Pull, "")
	testenv.WaitFor(t, 10*time.Second, "the next pass", func() bool { return rec.n() == 2 })
	if _, err := rec.get(1); err != nil {
		t.Errorf("next pass: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	rec := &recorder{}
	q := New(func(ctx context.Context, p Pass) error {
		<-ctx.Done()
		return fmt.Errorf("fetch: %w", ctx.Err())
	}, Options{Timeout: 30 * time.Millisecond, Done: rec.done})
	start(t, q)
	q.Trigger("a", Pull, "")
	testenv.WaitFor(t, 10*time.Second, "the pass", func() bool { return rec.n() == 1 })
	_, err := rec.get(0)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestStopLetsRunningPassFinish(t *testing.T) {
	rec := &recorder{}
	entered := make(chan struct{})
	release := make(chan struct{})
	var sawCancel atomic.Bool
	q := New(func(ctx context.Context, p Pass) error {
		if p.Key == "b" {
			t.Error("a pending pass ran after stop")
		}
		close(entered)
		<-release
		sawCancel.Store(ctx.Err() != nil)
		return nil
	}, Options{Concurrency: 1, Grace: 10 * time.Second, Done: rec.done})
	stop := start(t, q)
	q.Trigger("a", Pull, "")
	<-entered
	q.Trigger("b", Pull, "") // waits for the semaphore, then is dropped
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	testenv.WaitFor(t, 10*time.Second, "stopped", func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.stopped })
	if q.Trigger("c", Pull, "") {
		t.Error("Trigger after stop reported a pending pass")
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rec.n() != 1 || sawCancel.Load() {
		t.Errorf("passes %d, cancelled %v: want the one pass finished uncancelled", rec.n(), sawCancel.Load())
	}
}

func TestStopCancelsAfterGrace(t *testing.T) {
	rec := &recorder{}
	entered := make(chan struct{})
	q := New(func(ctx context.Context, p Pass) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}, Options{Grace: 20 * time.Millisecond, Done: rec.done})
	stop := start(t, q)
	q.Trigger("a", Pull, "")
	<-entered
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("Run = %v, want cancelled", err)
	}
	_, perr := rec.get(0)
	if !errors.Is(perr, context.Canceled) {
		t.Errorf("pass err = %v", perr)
	}
}

func TestStopAbandonsStuckPass(t *testing.T) {
	entered := make(chan struct{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	q := New(func(ctx context.Context, p Pass) error {
		close(entered)
		<-stuck // ignores ctx
		return nil
	}, Options{Grace: 10 * time.Millisecond, Abandon: 10 * time.Millisecond})
	stop := start(t, q)
	q.Trigger("a", Pull, "")
	<-entered
	if err := stop(); err == nil || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("Run = %v, want abandoned", err)
	}
}

func TestRunTwice(t *testing.T) {
	q := New(func(context.Context, Pass) error { return nil }, Options{})
	start(t, q)
	testenv.WaitFor(t, 10*time.Second, "running", func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.running })
	if err := q.Run(t.Context()); err == nil {
		t.Error("second Run succeeded")
	}
}

// BenchmarkTriggerCoalesced measures a trigger that joins a pending pass,
// the common case of a burst.
func BenchmarkTriggerCoalesced(b *testing.B) {
	q := New(func(context.Context, Pass) error { return nil }, Options{})
	q.Trigger("a", Pull, "x")
	for b.Loop() {
		q.Trigger("a", Pull, "x")
	}
}

// TestPassLinesNameThePass: every line logged during a pass with its
// context, by the pass function or the queue, carries the pass ID; the
// pass's error is logged once, at its end.
func TestPassLinesNameThePass(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(logctx.Handler(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil)))
	done := make(chan struct{})
	q := New(func(ctx context.Context, p Pass) error {
		log.InfoContext(ctx, "inside", "n", 1)
		return errors.New("boom")
	}, Options{Logger: log, Done: func(Pass, error, time.Duration) { close(done) }})
	q.Trigger("a", Pull, "poll")
	start(t, q)
	<-done
	mu.Lock()
	defer mu.Unlock()
	var msgs []string
	errs := 0
	for line := range strings.Lines(buf.String()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, l["msg"].(string))
		if l["pass"] != float64(1) {
			t.Errorf("line without the pass: %s", line)
		}
		if _, ok := l["err"]; ok {
			errs++
		}
	}
	if want := []string{"pass", "inside", "pass finished with errors"}; !slices.Equal(msgs, want) {
		t.Errorf("lines %q, want %q", msgs, want)
	}
	if errs != 1 {
		t.Errorf("the error logged %d times, want once", errs)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type waitUntil time.Time

func (w waitUntil) Error() string      { return "remote backing off" }
func (w waitUntil) RetryAt() time.Time { return time.Time(w) }

// TestRetryAfterFailure: a transient failure asks for the pass again, with
// its kinds, and a success ends the retries; a failure only new inputs fix
// is not retried.
func TestRetryAfterFailure(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		err     error
		retried bool
	}{
		{"transient", errors.New("engine restarting"), true},
		{"a time named", waitUntil(time.Now().Add(30 * time.Millisecond)), true},
		{"new inputs only", retry.OnNewInputs(errors.New("Dockerfile: unknown instruction")), false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			rec := &recorder{}
			var calls atomic.Int32
			q := New(func(ctx context.Context, p Pass) error {
				if calls.Add(1) == 1 {
					return tc.err
				}
				return nil
			}, Options{RetryBase: 20 * time.Millisecond, RetryMax: time.Second, Done: rec.done})
			q.Trigger("pull", Pull|Rebuild, "cron rebuild")
			start(t, q)
			testenv.WaitFor(t, 10*time.Second, "the first pass", func() bool { return rec.n() == 1 })
			s := q.slots["pull"]
			s.mu.Lock()
			timer := s.retry
			s.mu.Unlock()
			if !tc.retried {
				if timer != nil {
					t.Fatal("a retry was asked for")
				}
				return
			}
			testenv.WaitFor(t, 10*time.Second, "the retry", func() bool { return rec.n() == 2 })
			p, err := rec.get(1)
			if err != nil || p.Kinds != Pull|Rebuild || !slices.Equal(p.Reasons, []string{"retry after error"}) {
				t.Errorf("retry: %+v, %v", p, err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.failures != 0 {
				t.Errorf("failures in a row after a success: %d", s.failures)
			}
		})
	}
}

// TestRetryBackoff: each failure in a row doubles the wait, up to RetryMax;
// a named time is kept within the bounds.
func TestRetryBackoff(t *testing.T) {
	q := New(func(context.Context, Pass) error { return nil }, Options{RetryBase: time.Minute, RetryMax: 5 * time.Minute})
	s := &slot{key: "k"}
	p := Pass{Key: "k", Kinds: Reconcile}
	defer func() { s.retry.Stop() }()
	for i, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("x"), "in 1m0s"},
		{errors.New("x"), "in 2m0s"},
		{errors.New("x"), "in 4m0s"},
		{errors.New("x"), "in 5m0s"},
		{waitUntil(time.Now().Add(3*time.Minute + 10*time.Second)), "in 3m10s"},
		{waitUntil(time.Now().Add(time.Second)), "in 1m0s"},
		{waitUntil(time.Now().Add(time.Hour)), "in 5m0s"},
		{retry.OnNewInputs(errors.New("x")), "on new inputs"},
		{fmt.Errorf("build: %w", context.Canceled), "at the next start"},
	} {
		if got := q.retryLater(s, p, tc.err); got != tc.want {
			t.Errorf("failure %d (%v): %q, want %q", i+1, tc.err, got, tc.want)
		}
	}
	off := New(func(context.Context, Pass) error { return nil }, Options{})
	if got := off.retryLater(&slot{}, p, errors.New("x")); got != "at the next trigger" {
		t.Errorf("without RetryBase: %q", got)
	}
}
