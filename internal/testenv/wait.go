package testenv

import (
	"testing"
	"time"
)

// maxPoll bounds the gap between two looks at a condition: polls start
// at a millisecond and double up to it, so a condition that holds soon
// is seen soon (the unit tests of a queue wait milliseconds) and a long
// wait (an image build) costs ten looks a second, not a thousand.
const maxPoll = 100 * time.Millisecond

// WaitFor polls cond until it holds, failing the test, with what, when
// timeout passes first or the test's context ends.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Eventually is WaitFor for a condition that also says what it saw: the
// failure reports the last of it. It returns how long the wait took.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, last string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for poll := time.Millisecond; ; poll = min(2*poll, maxPoll) {
		ok, last := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			if last != "" {
				t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		tick := time.NewTimer(poll)
		select {
		case <-t.Context().Done():
			tick.Stop()
			t.Fatalf("test ended waiting for %s", what)
		case <-tick.C:
		}
	}
}
