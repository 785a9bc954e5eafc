package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
)

// Executor is what Apply needs from the engine side. Get returns an error
// wrapping containers.ErrNotFound when the container is gone; Stop and
// Remove are idempotent.
type Executor interface {
	Get(ctx context.Context, course, student string) (containers.Container, error)
	Stop(ctx context.Context, id string) error
	Remove(ctx context.Context, id string) error
}

var _ Executor = (*containers.Manager)(nil)

// Applier carries out plans.
type Applier struct {
	Exec Executor
	// Locks is shared with spawns: an action waits for a spawn of the same
	// student to finish, and then re-checks.
	Locks *containers.Locks
	// Traffic is the front door's record (nil without one): a server it
	// forwarded a request to since the plan, or with a websocket open
	// through it now, is in use and left alone — a student working in an
	// open session never goes through a spawn.
	Traffic activity.TrafficSource
	// Concurrency bounds the actions in flight.
	Concurrency int
	Log         *slog.Logger
}

// Outcome is what became of one action.
type Outcome struct {
	Action Action `json:"action"`
	// Done is true when the stop or removal was carried out.
	Done bool `json:"done"`
	// Skipped says why the action was not carried out (the container
	// changed since the plan); empty when Done or on error.
	Skipped string `json:"skipped,omitempty"`
	Err     error  `json:"-"`
}

// Apply carries out the retirements of a plan, Concurrency at a time. Right
// before each one it takes the student's lock and looks at the container
// again: gone, replaced, changed state, handed out or used through the
// front door since the plan means the action is skipped. Errors are
// joined; one course's failure never stops another's.
func (ap *Applier) Apply(ctx context.Context, actions []Action) ([]Outcome, error) {
	log := ap.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var todo []Action
	for _, a := range actions {
		if a.Retires() {
			todo = append(todo, a)
		}
	}
	out := make([]Outcome, len(todo))
	sem := make(chan struct{}, max(ap.Concurrency, 1))
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = Outcome{Action: a, Err: fmt.Errorf("%s %s: %w", a.Kind, a.Container, ctx.Err())}
				return
			}
			defer func() { <-sem }()
			out[i] = ap.one(ctx, a)
			// A failure is returned, not logged: the pass's end logs it.
			switch o := out[i]; {
			case o.Done:
				log.InfoContext(ctx, "container action", "course", a.Course, "container", a.Container, "action", string(a.Kind), "reason", a.Reason)
			case o.Err == nil:
				log.InfoContext(ctx, "container action skipped", "course", a.Course, "container", a.Container, "action", string(a.Kind), "skipped", o.Skipped)
			}
		})
	}
	wg.Wait()
	// Join per course, in a stable order.
	byCourse := map[string][]error{}
	for _, o := range out {
		if o.Err != nil {
			byCourse[o.Action.Course] = append(byCourse[o.Action.Course], o.Err)
		}
	}
	var errs []error
	for _, c := range slices.Sorted(maps.Keys(byCourse)) {
		errs = append(errs, fmt.Errorf("course %s: %w", c, errors.Join(byCourse[c]...)))
	}
	return out, errors.Join(errs...)
}

func (ap *Applier) one(ctx context.Context, a Action) Outcome {
	o := Outcome{Action: a}
	if ap.Locks != nil {
		unlock, err := ap.Locks.Lock(ctx, a.Course, a.Student)
		if err != nil {
			o.Err = fmt.Errorf("%s %s: %w", a.Kind, a.Container, err)
			return o
		}
		defer unlock()
		if t := ap.Locks.HandedOut(a.Course, a.Student); t.After(a.At) {
			o.Skipped = "handed out to the student since the plan"
			return o
		}
	}
	if ap.Traffic != nil {
		switch tr, _ := ap.Traffic.Traffic(a.Course, a.Student); {
		case tr.Websockets > 0:
			o.Skipped = "a websocket open through the front door"
			return o
		case tr.Last.After(a.At):
			o.Skipped = "used through the front door since the plan"
			return o
		}
	}
	c, err := ap.Exec.Get(ctx, a.Course, a.Student)
	switch {
	case errors.Is(err, containers.ErrNotFound):
		o.Skipped = "gone since the plan"
		return o
	case err != nil:
		o.Err = fmt.Errorf("%s %s: re-check: %w", a.Kind, a.Container, err)
		return o
	case c.ID != a.ID:
		o.Skipped = "replaced since the plan"
		return o
	case c.State != a.State:
		o.Skipped = fmt.Sprintf("%s since the plan", c.State)
		return o
	}
	if a.Kind == Stop {
		err = ap.Exec.Stop(ctx, a.ID)
	} else {
		err = ap.Exec.Remove(ctx, a.ID)
	}
	if err != nil {
		o.Err = fmt.Errorf("%s %s: %w", a.Kind, a.Container, err)
		return o
	}
	o.Done = true
	return o
}
