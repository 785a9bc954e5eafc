// Package servertest provides a fake server.Backend and sample data, for
// tests of the server and of code that talks to its API.
package servertest

import (
	"context"
	"errors"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/server"
)

// Backend is a server.Backend made of functions; a nil function answers
// with an error (Ready: not ready), so a test sets only what it uses.
type Backend struct {
	ReadyFunc        func() error
	StatusFunc       func(ctx context.Context) (api.Status, error)
	HistoryFunc      func(ctx context.Context, q history.Query) ([]history.Record, error)
	PlanFunc         func(ctx context.Context) (api.Plan, error)
	SpawnFunc        func(ctx context.Context, req api.SpawnRequest) (api.SpawnResult, error)
	SyncFunc         func(ctx context.Context, req api.SyncRequest) (api.SyncResult, error)
	ConfirmPruneFunc func(ctx context.Context, revision string) error
	ResetFunc        func(ctx context.Context, req api.ResetRequest) (api.ResetResult, error)
	ShareFunc        func(ctx context.Context, req api.ShareRequest) (api.ShareResult, error)
}

var _ server.Backend = (*Backend)(nil)

var errUnset = errors.New("servertest: function not set")

// Ready calls ReadyFunc.
func (b *Backend) Ready() error {
	if b.ReadyFunc == nil {
		return errors.New("first pass not finished")
	}
	return b.ReadyFunc()
}

// Status calls StatusFunc.
func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	if b.StatusFunc == nil {
		return api.Status{}, errUnset
	}
	return b.StatusFunc(ctx)
}

// History calls HistoryFunc.
func (b *Backend) History(ctx context.Context, q history.Query) ([]history.Record, error) {
	if b.HistoryFunc == nil {
		return nil, errUnset
	}
	return b.HistoryFunc(ctx, q)
}

// Plan calls PlanFunc.
func (b *Backend) Plan(ctx context.Context) (api.Plan, error) {
	if b.PlanFunc == nil {
		return api.Plan{}, errUnset
	}
	return b.PlanFunc(ctx)
}

// Spawn calls SpawnFunc.
func (b *Backend) Spawn(ctx context.Context, req api.SpawnRequest) (api.SpawnResult, error) {
	if b.SpawnFunc == nil {
		return api.SpawnResult{}, errUnset
	}
	return b.SpawnFunc(ctx, req)
}

// Sync calls SyncFunc.
func (b *Backend) Sync(ctx context.Context, req api.SyncRequest) (api.SyncResult, error) {
	if b.SyncFunc == nil {
		return api.SyncResult{}, errUnset
	}
	return b.SyncFunc(ctx, req)
}

// ConfirmPrune calls ConfirmPruneFunc.
func (b *Backend) ConfirmPrune(ctx context.Context, revision string) error {
	if b.ConfirmPruneFunc == nil {
		return errUnset
	}
	return b.ConfirmPruneFunc(ctx, revision)
}

// Reset calls ResetFunc.
func (b *Backend) Reset(ctx context.Context, req api.ResetRequest) (api.ResetResult, error) {
	if b.ResetFunc == nil {
		return api.ResetResult{}, errUnset
	}
	return b.ResetFunc(ctx, req)
}

// Share calls ShareFunc.
func (b *Backend) Share(ctx context.Context, req api.ShareRequest) (api.ShareResult, error) {
	if b.ShareFunc == nil {
		return api.ShareResult{}, errUnset
	}
	return b.ShareFunc(ctx, req)
}

// SampleStatus is a plausible site at now: three courses with roll-outs at
// 75%, 100% (no containers) and 0%, builds with logs (one failed), actions
// and an error.
func SampleStatus(now time.Time) api.Status {
	return api.Status{
		Revision: "3f2a9c1d0e4b5a69788766554433221100ffeedd",
		Courses: []api.CourseView{
			{Name: "flotpython", Repo: "https://github.com/parmentelat/flotpython.git", Branch: "master",
				Commit: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Image: "flotpython",
				BuildKey:   "sha256:9e1c0b7d4f2a6e8b3c5d7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c",
				Containers: 4, OnCurrent: 3, Stale: 1, Running: 2},
			{Name: "ds-handbook", Repo: "https://github.com/jakevdp/PythonDataScienceHandbook.git", Branch: "main",
				Commit: "0f9e8d7c6b5a49382716051f2e3d4c5b6a798897", Image: "datascience",
				BuildKey: "sha256:1234abcd5678ef901234abcd5678ef901234abcd5678ef901234abcd5678ef90"},
			{Name: "python-intro", Repo: "https://example.org/dept-courses.git", Branch: "main",
				Commit: "77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd", Image: "python-intro",
				BuildKey: "sha256:aa55", Containers: 2, OnCurrent: 0, Stale: 2, Running: 2,
				Error:      "build of python-intro failed: step 4/7: exit code 1",
				ImageError: "image python-intro: build: The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1"},
		},
		Images: []api.ImageView{
			{Name: "flotpython", BuildKey: "sha256:9e1c0b7d4f2a6e8b", Tag: "flotpython:9e1c0b7d4f2a",
				Source: "https://github.com/parmentelat/flotpython.git@a1b2c3d:docker-image", Built: now.Add(-3 * time.Hour),
				Courses: []string{"flotpython"}},
			{Name: "datascience", BuildKey: "sha256:1234abcd5678", Tag: "datascience:1234abcd5678", Pinned: true,
				Source: "config@3f2a9c1:images/datascience.dockerfile", Built: now.Add(-26 * time.Hour),
				Courses: []string{"ds-handbook"}},
			{Name: "python-intro", Base: "nbhosting/scipy-notebook", BuildKey: "sha256:aa55", Built: now.Add(-50 * time.Hour),
				Source: "https://example.org/dept-courses.git@77aa88b:intro/.nbhosting/Dockerfile", Courses: []string{"python-intro"},
				Error: "image python-intro: build: The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
				Failed: &api.FailedBuild{BuildKey: "sha256:bb66", Stage: "build", Time: now.Add(-4 * time.Minute),
					Error:   "image python-intro: build: The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
					LogTail: "Step 4/7 : RUN pip install -r requirements.txt\nERROR: No matching distribution found for numpyy (tail)"}},
		},
		Builds: []api.BuildView{
			{Image: "python-intro", BuildKey: "sha256:aa55", Result: "failed", Time: now.Add(-4 * time.Minute),
				Duration: 42 * time.Second, Message: "step 4/7: exit code 1",
				Log: "Step 1/7 : FROM python:3.12@sha256:abcd\n ---> 1a2b3c\nStep 4/7 : RUN pip install -r requirements.txt\nERROR: No matching distribution found for numpyy\n<script>alert('not run')</script>"},
			{Image: "flotpython", BuildKey: "sha256:9e1c0b7d4f2a6e8b", Result: "ok", Time: now.Add(-3 * time.Hour),
				Duration: 3*time.Minute + 12*time.Second, Log: "Step 1/5 : FROM jupyter/base\nSuccessfully built 9e1c0b7d4f2a"},
		},
		Actions: []api.ActionView{
			{Kind: "remove", Course: "flotpython", Student: "alice", Reason: "idle 2h14m ≥ 2h, image stale", Result: "ok", Time: now.Add(-2 * time.Minute)},
			{Kind: "stop", Course: "ds-handbook", Student: "bob", Reason: "idle 31m ≥ 30m", Result: "ok", Time: now.Add(-9 * time.Minute)},
			{Kind: "keep", Course: "python-intro", Student: "carol", Reason: "active (kernel busy), image stale", Time: now.Add(-9 * time.Minute)},
		},
		Errors:   []string{"remote https://example.org/dept-courses.git unreachable: dial tcp: connection refused (retry in 4m)"},
		LastPass: now.Add(-40 * time.Second),
		Schedules: map[string]time.Time{
			"pull": now.Add(20 * time.Second), "reconcile": now.Add(7 * time.Minute),
		},
	}
}
