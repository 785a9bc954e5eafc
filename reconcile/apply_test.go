package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
)

// fakeExec is an Executor of func fields.
type fakeExec struct {
	GetFn    func(ctx context.Context, course, student string) (containers.Container, error)
	StopFn   func(ctx context.Context, id string) error
	RemoveFn func(ctx context.Context, id string) error
}

var _ Executor = (*fakeExec)(nil)

func (f *fakeExec) Get(ctx context.Context, course, student string) (containers.Container, error) {
	return f.GetFn(ctx, course, student)
}
func (f *fakeExec) Stop(ctx context.Context, id string) error   { return f.StopFn(ctx, id) }
func (f *fakeExec) Remove(ctx context.Context, id string) error { return f.RemoveFn(ctx, id) }

func TestApply(t *testing.T) {
	const R, S = containers.Running, containers.Stopped
	// What the engine shows at apply time, by student.
	live := map[string]containers.Container{
		"same":      ctr("c", "same", S, v1, 0),
		"stopme":    ctr("c", "stopme", R, v2, time.Hour),
		"newid":     {ID: "other", Course: "c", Student: "newid", State: S},
		"started":   ctr("c", "started", R, v1, time.Minute),
		"handed":    ctr("c", "handed", R, v2, time.Hour),
		"browsing":  ctr("c", "browsing", R, v2, time.Hour),
		"websocket": ctr("c", "websocket", R, v2, time.Hour),
		"broken":    ctr("d", "broken", S, v1, 0),
	}
	var mu sync.Mutex
	var did []string
	exec := &fakeExec{
		GetFn: func(_ context.Context, _, student string) (containers.Container, error) {
			c, ok := live[student]
			if !ok {
				return containers.Container{}, containers.ErrNotFound
			}
			return c, nil
		},
		StopFn: func(_ context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			did = append(did, "stop "+id)
			return nil
		},
		RemoveFn: func(_ context.Context, id string) error {
			if id == "broken" {
				return errors.New("engine says no")
			}
			mu.Lock()
			defer mu.Unlock()
			did = append(did, "remove "+id)
			return nil
		},
	}
	act := func(k Kind, c containers.Container) Action {
		return Action{Kind: k, Course: c.Course, Student: c.Student, Container: c.Name, ID: c.ID, State: c.State, At: now}
	}
	locks := containers.NewLocks()
	locks.MarkHandedOut("c", "handed", now.Add(time.Second))
	plan := []Action{
		act(Remove, ctr("c", "same", S, v1, 0)),
		act(Stop, ctr("c", "stopme", R, v2, time.Hour)),
		act(Remove, ctr("c", "gone", S, v1, 0)),
		act(Remove, ctr("c", "newid", S, v1, 0)),
		act(Remove, ctr("c", "started", S, v1, 0)),
		act(Stop, ctr("c", "handed", R, v2, time.Hour)),
		act(Stop, ctr("c", "browsing", R, v2, time.Hour)),
		act(Stop, ctr("c", "websocket", R, v2, time.Hour)),
		act(Remove, ctr("d", "broken", S, v1, 0)),
		act(Keep, ctr("c", "kept", S, v2, 0)),
		act(ReportStale, ctr("c", "stale", R, v1, 0)),
		{Kind: Hold, Held: Remove, Course: "c", Student: "held", ID: "held", State: S, At: now},
	}
	ap := &Applier{Exec: exec, Locks: locks, Traffic: traffic{
		"browsing":  {Last: now.Add(time.Second)},
		"websocket": {Last: now.Add(-time.Hour), Websockets: 1},
		"stopme":    {Last: now.Add(-time.Hour)},
	}, Concurrency: 3}
	out, err := ap.Apply(t.Context(), plan)
	if err == nil || !strings.Contains(err.Error(), "course d: remove d-x-broken: engine says no") {
		t.Errorf("err = %v", err)
	}
	slices.Sort(did)
	if want := []string{"remove same", "stop stopme"}; !slices.Equal(did, want) {
		t.Errorf("did %v, want %v", did, want)
	}
	skipped := map[string]string{}
	for _, o := range out {
		if o.Skipped != "" {
			skipped[o.Action.Student] = o.Skipped
		}
	}
	for student, why := range map[string]string{"gone": "gone", "newid": "replaced", "started": "running since", "handed": "handed out",
		"browsing": "used through the front door", "websocket": "websocket open"} {
		if !strings.Contains(skipped[student], why) {
			t.Errorf("%s: skipped %q, want %q", student, skipped[student], why)
		}
	}
	if len(out) != 9 {
		t.Errorf("%d outcomes, want one per retirement (9)", len(out))
	}
}

// traffic is a front door's record, by student.
type traffic map[string]activity.Traffic

func (tr traffic) Traffic(_, student string) (activity.Traffic, bool) {
	t, ok := tr[student]
	return t, ok
}
