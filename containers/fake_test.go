package containers

import (
	"context"
	"time"
)

// fakeEngine is an Engine of func fields; a nil field panics, so a test
// states every engine call it expects.
type fakeEngine struct {
	ListFn    func(ctx context.Context) ([]Raw, error)
	ImagesFn  func(ctx context.Context, refs []string) (map[string]Image, error)
	InspectFn func(ctx context.Context, name string) (Raw, error)
	CreateFn  func(ctx context.Context, spec Spec) (string, error)
	StartFn   func(ctx context.Context, id string) error
	StopFn    func(ctx context.Context, id string, timeout time.Duration) error
	RemoveFn  func(ctx context.Context, id string) error
}

var _ Engine = (*fakeEngine)(nil)

func (f *fakeEngine) List(ctx context.Context) ([]Raw, error) { return f.ListFn(ctx) }
func (f *fakeEngine) Images(ctx context.Context, refs []string) (map[string]Image, error) {
	return f.ImagesFn(ctx, refs)
}
func (f *fakeEngine) Inspect(ctx context.Context, name string) (Raw, error) {
	return f.InspectFn(ctx, name)
}
func (f *fakeEngine) Create(ctx context.Context, spec Spec) (string, error) {
	return f.CreateFn(ctx, spec)
}
func (f *fakeEngine) Start(ctx context.Context, id string) error { return f.StartFn(ctx, id) }
func (f *fakeEngine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	return f.StopFn(ctx, id, timeout)
}
func (f *fakeEngine) Remove(ctx context.Context, id string) error { return f.RemoveFn(ctx, id) }
