package reconcile_test

import (
	"fmt"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// Plan on a small world: image v2 of course intro was just published, and
// five students are in every situation of the decision table. Plan is pure:
// no engine, no clock, the same actions for the same inputs.
func ExamplePlan() {
	cfg, _, err := manifest.Parse("courses.yaml", []byte(`version: 1
courses:
  intro:
    repo: https://git.example.org/teaching/intro.git
    idle: 1h
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// What intro:latest resolves to now.
	desired := reconcile.NewDesired(cfg, map[string]string{"intro": "sha256:v2"})

	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ctr := func(student string, state containers.State, image string) containers.Container {
		c := containers.Container{ID: student, Name: naming.Container("intro", student), Course: "intro", Student: student,
			State: state, ImageID: image, Created: now.Add(-24 * time.Hour)}
		if state == containers.Running {
			c.StartedAt, c.Port = now.Add(-5*time.Hour), 30000
		}
		return c
	}
	observed := []containers.Container{
		ctr("alice", containers.Running, "sha256:v1"), // busy kernel
		ctr("bob", containers.Running, "sha256:v2"),   // idle 3h
		ctr("carol", containers.Running, "sha256:v1"), // idle 3h
		ctr("dave", containers.Stopped, "sha256:v1"),
		ctr("erin", containers.Stopped, "sha256:v2"),
	}
	idle := activity.Result{State: activity.Answered, Kernels: 1, LastActivity: now.Add(-3 * time.Hour)}
	act := map[string]activity.Result{
		"alice": {State: activity.Answered, Busy: true, Kernels: 1, LastActivity: now.Add(-3 * time.Hour)},
		"bob":   idle,
		"carol": idle,
	}
	for _, a := range reconcile.Plan(desired, observed, act, now) {
		fmt.Printf("%-12s %-6s %s\n", a.Kind, a.Student, a.Reason)
	}
	// Output:
	// report-stale alice  active (a kernel is busy), image v1 is stale (current v2); removed once idle
	// stop         bob    idle for 3h0m0s (idle: 1h0m0s), image current
	// remove       carol  idle for 3h0m0s, image v1 is stale (current v2)
	// remove       dave   stopped, image v1 is stale (current v2)
	// keep         erin   stopped, image current
}
