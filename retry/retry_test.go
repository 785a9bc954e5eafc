package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

type atError struct{ at time.Time }

func (e atError) Error() string      { return "backing off" }
func (e atError) RetryAt() time.Time { return e.at }

type faultError struct{ inputs bool }

func (e faultError) Error() string  { return "build failed" }
func (e faultError) Terminal() bool { return e.inputs }

func TestOf(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	transient := errors.New("connection refused")
	for _, tc := range []struct {
		desc string
		err  error
		want Verdict
	}{
		{"a plain error is transient", transient, Verdict{Kind: Soon}},
		{"wrapped, still transient", fmt.Errorf("course a: %w", transient), Verdict{Kind: Soon}},
		{"marked: new inputs only", OnNewInputs(errors.New("config rejected")), Verdict{Kind: OnChange}},
		{"marked, then wrapped", fmt.Errorf("pull: %w", OnNewInputs(transient)), Verdict{Kind: OnChange}},
		{"Terminal() false: transient", faultError{inputs: false}, Verdict{Kind: Soon}},
		{"Terminal() true", fmt.Errorf("image x: %w", faultError{inputs: true}), Verdict{Kind: OnChange}},
		{"RetryAt", fmt.Errorf("remote: %w", atError{t0}), Verdict{Kind: Later, At: t0}},
		{"cancelled: stopped, not failed", fmt.Errorf("build: %w", context.Canceled), Verdict{Kind: OnChange}},
		{"timed out: transient", fmt.Errorf("fetch: %w", context.DeadlineExceeded), Verdict{Kind: Soon}},
		{"joined: one transient makes it soon", errors.Join(OnNewInputs(transient), atError{t0}, transient), Verdict{Kind: Soon}},
		{"joined: the earliest of two waits", errors.Join(atError{t0.Add(time.Hour)}, OnNewInputs(transient), atError{t0}), Verdict{Kind: Later, At: t0}},
		{"joined: all terminal", errors.Join(OnNewInputs(transient), faultError{inputs: true}), Verdict{Kind: OnChange}},
		{"nested joins", fmt.Errorf("pass: %w", errors.Join(errors.Join(OnNewInputs(transient)), fmt.Errorf("c: %w", atError{t0}))), Verdict{Kind: Later, At: t0}},
	} {
		if got := Of(tc.err); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.desc, got, tc.want)
		}
	}
	if OnNewInputs(nil) != nil {
		t.Error("OnNewInputs(nil) is not nil")
	}
}
