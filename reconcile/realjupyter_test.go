package reconcile_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
)

func requireEngine(t *testing.T) *client.Client {
	return testenv.RequireDockerFor(t, jupytertest.RequireEnv)
}

// scoped is the real engine with List restricted to the containers whose
// name starts with prefix. The engine is shared with other tests (and other
// people's): a pass over all of it would plan for, and could retire,
// containers that are not this test's.
type scoped struct {
	containers.Engine
	prefix string
}

var _ containers.Engine = scoped{}

func (s scoped) List(ctx context.Context) ([]containers.Raw, error) {
	all, err := s.Engine.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []containers.Raw
	for _, r := range all {
		if strings.HasPrefix(r.Name, s.prefix) {
			out = append(out, r)
		}
	}
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func actionOf(plan []reconcile.Action, student string) reconcile.Action {
	for _, a := range plan {
		if a.Student == student {
			return a
		}
	}
	return reconcile.Action{}
}

// A container pass over two real Jupyter servers made to look like
// nbh-sync's student containers (name, labels, /{port}/ base URL, a token
// from the course config): alice's kernel is running a long cell, bob's
// only kernel was opened and never used. With a short idle in the course,
// the pass stops bob's container and keeps alice's, and its probes leave
// alice's server as it found it.
func TestPassRealJupyter(t *testing.T) {
	t.Parallel()
	cli := requireEngine(t)
	ctx := t.Context()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	course := "nbhtest-prb-" + hex.EncodeToString(b)

	// The course's image is the Jupyter test image, so both containers run
	// the current image: idleness alone decides.
	if err := cli.ImageTag(ctx, jupytertest.Image, course+":latest"); err != nil {
		// A missing image skips (or fails) in jupytertest.Start below.
		t.Logf("tag %s: %v", jupytertest.Image, err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), course+":latest", image.RemoveOptions{})
	})

	start := func(student string) *jupytertest.Server {
		return jupytertest.Start(t, cli, jupytertest.Options{
			Name:    naming.Container(course, student),
			BaseURL: "/{port}/",
			Token:   student + "-tok",
			Labels: map[string]string{
				containers.LabelCourse:    course,
				containers.LabelStudent:   student,
				containers.LabelManagedBy: containers.ManagedBy,
				containers.LabelPort:      "{port}",
			},
		})
	}
	alice, bob := start("alice"), start("bob")

	// A settled kernel first: the server's listing of a fresh one lags.
	ka, err := alice.SettledKernel(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartExecution(ctx, ka.ID, "import time; time.sleep(600)"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitKernelState(ctx, ka.ID, "busy", time.Minute); err != nil {
		t.Fatal(err)
	}
	kb, err := bob.CreateKernel(ctx)
	if err != nil {
		t.Fatal(err)
	}

	const idle = 3 * time.Second
	co := manifest.Course{Name: course, Idle: manifest.Duration(idle), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 10,
		Container: manifest.Container{Port: 8888, Token: "{student}-tok"}}
	cfg := &manifest.Config{Version: 1, Courses: map[string]manifest.Course{course: co},
		Defaults: manifest.Defaults{Idle: manifest.Duration(2 * time.Hour), Lingering: manifest.Duration(48 * time.Hour), RetireLimit: 10}}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	m := containers.New(scoped{containers.NewDocker(cli), course + naming.Sep}, nil, log)
	m.StopTimeout = 5 * time.Second
	p := activity.New()
	p.SecondLook = 200 * time.Millisecond
	pass := &reconcile.Pass{Containers: m, Prober: p, Concurrency: 2, Log: log}

	// What the pass sees: alice busy, bob's kernel at its creation.
	obs, err := pass.Observe(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Containers) != 2 {
		t.Fatalf("observed %+v, want alice's and bob's containers", obs.Containers)
	}
	for _, c := range obs.Containers {
		if c.Adopted || c.State != containers.Running || (c.Port != alice.HostPort && c.Port != bob.HostPort) {
			t.Errorf("observed %+v", c)
		}
	}
	ra, rb := obs.Activity[alice.ContainerID], obs.Activity[bob.ContainerID]
	if ra.State != activity.Answered || !ra.Busy {
		t.Errorf("alice: %+v, want answered, busy", ra)
	}
	if rb.State != activity.Answered || rb.Busy || rb.Kernels != 1 || rb.LastActivity.Before(kb.LastActivity) {
		t.Errorf("bob: %+v, want answered, not busy, one kernel, active since its creation %s", rb, kb.LastActivity)
	}
	// Plan is pure: ask it about a moment before and after bob's idle time.
	if a := actionOf(reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, rb.LastActivity.Add(idle/2)), "bob"); a.Kind != reconcile.Keep {
		t.Errorf("bob within idle: %s (%s), want keep", a.Kind, a.Reason)
	}
	later := reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, rb.LastActivity.Add(time.Hour))
	if a := actionOf(later, "bob"); a.Kind != reconcile.Stop {
		t.Errorf("bob an hour later: %s (%s), want stop", a.Kind, a.Reason)
	}
	if a := actionOf(later, "alice"); a.Kind != reconcile.Keep || !strings.Contains(a.Reason, "busy") {
		t.Errorf("alice an hour later: %s (%s), want keep, busy", a.Kind, a.Reason)
	}

	// Wait on the clock until a pass would stop bob, then run the pass.
	// His kernel's last_activity moves once more when it has started up
	// and says so, which on a loaded machine can come between the look
	// and the pass: the pass then rightly keeps him, and the wait starts
	// again.
	deadline := time.Now().Add(3 * time.Minute)
	var aliceBefore jupytertest.Status
	var plan []reconcile.Action
	var out []reconcile.Outcome
	for {
		obs, err := pass.Observe(ctx, cfg, false)
		if err != nil {
			t.Fatal(err)
		}
		a := actionOf(reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, time.Now()), "bob")
		if time.Now().After(deadline) {
			t.Fatalf("bob not stopped after 3m: %s (%s), %+v", a.Kind, a.Reason, obs.Activity[bob.ContainerID])
		}
		if a.Kind == reconcile.Stop {
			t.Logf("bob before the pass: %+v (kernel created at %s)", obs.Activity[bob.ContainerID], kb.LastActivity.Format(time.RFC3339Nano))
			if aliceBefore, err = alice.Status(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := pass.Run(ctx, cfg, false)
			if err != nil {
				t.Fatal(err)
			}
			plan, out = res.Actions, res.Outcomes
			if actionOf(plan, "bob").Kind == reconcile.Stop {
				break
			}
			t.Logf("bob's activity moved between the look and the pass: %s", actionOf(plan, "bob").Reason)
			continue
		}
		wait := idle / 4
		if r := obs.Activity[bob.ContainerID]; !r.LastActivity.IsZero() {
			wait = max(time.Until(r.LastActivity.Add(idle)), 50*time.Millisecond)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	for _, a := range plan {
		t.Logf("%s %s: %s", a.Kind, a.Student, a.Reason)
	}
	if a := actionOf(plan, "alice"); a.Kind != reconcile.Keep || !strings.Contains(a.Reason, "busy") {
		t.Errorf("alice: %s (%s), want keep, busy", a.Kind, a.Reason)
	}
	if a := actionOf(plan, "bob"); a.Kind != reconcile.Stop {
		t.Errorf("bob: %s (%s), want stop", a.Kind, a.Reason)
	}
	if len(out) != 1 || out[0].Action.Student != "bob" || !out[0].Done || out[0].Err != nil {
		t.Errorf("outcomes %+v, want bob's stop done", out)
	}

	// On the engine: bob's container stopped (not removed), alice's runs,
	// her kernel still busy, and the pass left her server's activity as it
	// was (the probe is no activity).
	cs, err := m.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]containers.State{}
	for _, c := range cs {
		states[c.Student] = c.State
	}
	if states["alice"] != containers.Running || states["bob"] != containers.Stopped {
		t.Errorf("after the pass: %v, want alice running, bob stopped", states)
	}
	aliceAfter, err := alice.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := alice.KernelsUntracked(ctx)
	if err != nil || len(ks) != 1 || ks[0].ExecutionState != "busy" {
		t.Fatalf("alice's kernels after the pass: %+v, %v", ks, err)
	}
	// Her kernel may have published something meanwhile, moving the global
	// last_activity to its own; a tracked probe would have moved it to the
	// probe's time.
	if want := maxTime(aliceBefore.LastActivity, ks[0].LastActivity); !aliceAfter.LastActivity.Equal(want) {
		t.Errorf("the pass moved alice's last_activity from %s to %s (kernel's: %s)", aliceBefore.LastActivity, aliceAfter.LastActivity, ks[0].LastActivity)
	}

	// Level-triggered and idempotent: a second pass changes nothing.
	res, err := pass.Run(ctx, cfg, false)
	plan, out = res.Actions, res.Outcomes
	if err != nil || len(out) != 0 {
		t.Errorf("second pass: %v, %+v", err, out)
	}
	if a := actionOf(plan, "bob"); a.Kind != reconcile.Keep {
		t.Errorf("bob stopped, second pass: %s (%s), want keep", a.Kind, a.Reason)
	}
}
