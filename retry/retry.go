// Package retry says what a failed pass should do next, from its error's
// type rather than its text: try again soon (a transient failure: the
// engine was restarting, a fetch timed out), wait until a known time (a
// remote backing off, a build held after it failed), or wait for new
// inputs (a Dockerfile that does not build, a config commit that does not
// validate: trying the same inputs again fails again). The models are
// Flux's Stalling and Waiting errors and controller-runtime's
// TerminalError.
//
// An error takes part by having a method: Terminal() bool (true: only new
// inputs fix it) or RetryAt() time.Time. Any other error is transient.
package retry

import (
	"context"
	"errors"
	"time"
)

// Kind is what to do after an error.
type Kind int

const (
	// Soon: a transient failure; try again shortly, backing off.
	Soon Kind = iota
	// Later: try again at Verdict.At, not before.
	Later
	// OnChange: the inputs are at fault; nothing to retry until they
	// change (a new commit triggers a pass by itself).
	OnChange
)

func (k Kind) String() string {
	switch k {
	case Soon:
		return "soon"
	case Later:
		return "later"
	default:
		return "on new inputs"
	}
}

// Verdict is what to do after an error.
type Verdict struct {
	Kind Kind
	// At is when to try again, for Later.
	At time.Time
}

// OnNewInputs marks err as one that only new inputs fix.
func OnNewInputs(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string  { return e.err.Error() }
func (e *terminalError) Unwrap() error  { return e.err }
func (e *terminalError) Terminal() bool { return true }

// Of returns the verdict on err. An error joining several (a pass's
// failures over many courses and images) gets the most urgent of theirs:
// any transient one makes it Soon; else the earliest Later; else OnChange.
// A cancelled context is OnChange: the pass was stopped, not failed.
func Of(err error) Verdict {
	if err == nil {
		return Verdict{Kind: OnChange}
	}
	if t, ok := err.(interface{ Terminal() bool }); ok && t.Terminal() {
		return Verdict{Kind: OnChange}
	}
	if w, ok := err.(interface{ RetryAt() time.Time }); ok {
		return Verdict{Kind: Later, At: w.RetryAt()}
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		var v *Verdict
		for _, e := range u.Unwrap() {
			if e != nil {
				v = urgent(v, Of(e))
			}
		}
		if v == nil {
			return Verdict{Kind: Soon}
		}
		return *v
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			return Of(inner)
		}
	}
	if errors.Is(err, context.Canceled) {
		return Verdict{Kind: OnChange}
	}
	return Verdict{Kind: Soon}
}

// urgent returns the more urgent of two verdicts.
func urgent(a *Verdict, b Verdict) *Verdict {
	switch {
	case a == nil || b.Kind < a.Kind:
		return &b
	case b.Kind == Later && a.Kind == Later && b.At.Before(a.At):
		return &b
	}
	return a
}
