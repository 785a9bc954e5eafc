package livelog

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFollowARunningBuild(t *testing.T) {
	l := New()
	w := l.Writer("demo")
	if got := l.Running(); len(got) != 0 {
		t.Fatalf("before any write: running %v, want none (a build not needed writes nothing)", got)
	}
	if err := l.Follow(t.Context(), "demo", func([]byte) error { return nil }); !errors.Is(err, ErrNoLog) {
		t.Fatalf("Follow before any write = %v, want ErrNoLog", err)
	}
	w.Write([]byte("Step 1/2\n"))
	if got := l.Running(); len(got) != 1 || got[0].Image != "demo" {
		t.Fatalf("running = %v, want demo", got)
	}

	var mu sync.Mutex
	var got strings.Builder
	parts := make(chan struct{}, 10)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(t.Context(), "demo", func(p []byte) error {
			mu.Lock()
			got.Write(p)
			mu.Unlock()
			parts <- struct{}{}
			return nil
		})
	}()
	<-parts // what was there before following
	w.Write([]byte("Step 2/2\n"))
	<-parts // what came after
	select {
	case err := <-done:
		t.Fatalf("Follow ended while the build runs: %v", err)
	default:
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatalf("Follow = %v at the end of the build", err)
	}
	if got.String() != "Step 1/2\nStep 2/2\n" {
		t.Errorf("followed %q", got.String())
	}
	if r := l.Running(); len(r) != 0 {
		t.Errorf("running after Close: %v", r)
	}
	// A build that ended is still there to read, whole, until the next one.
	var again strings.Builder
	if err := l.Follow(t.Context(), "demo", func(p []byte) error { again.Write(p); return nil }); err != nil || again.String() != got.String() {
		t.Errorf("Follow of an ended build = %q, %v", again.String(), err)
	}
}

func TestFollowStopsWithItsContext(t *testing.T) {
	l := New()
	w := l.Writer("demo")
	w.Write([]byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Follow(ctx, "demo", func([]byte) error { cancel(); return nil }) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Follow = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Follow did not return when its context ended")
	}
}

func TestALogIsBounded(t *testing.T) {
	l := New()
	w := l.Writer("big")
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range MaxLog/len(line) + 10 {
		w.Write(line)
	}
	w.Close()
	var n int
	var last []byte
	l.Follow(t.Context(), "big", func(p []byte) error { n += len(p); last = p; return nil })
	if n > MaxLog+200 || !strings.Contains(string(last), "live log cut here") {
		t.Errorf("log of %d bytes (max %d), ends %q", n, MaxLog, last[max(0, len(last)-80):])
	}
}
