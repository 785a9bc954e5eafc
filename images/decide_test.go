package images

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/retry"
)

// TestDecide is the build decision table: what plan predicts and what
// Ensure does, from the builds the engine holds and the last failure.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	spec := &Spec{Image: "i", Key: keyA}
	pinned := &Spec{Image: "i", Key: keyA, Pin: "bbbbbbbbbbbb"}
	passedA := Build{Key: keyA, Smoke: smokePassed, Created: now.Add(-time.Hour)}
	passedB := Build{Key: keyB, Smoke: smokePassed, Created: now.Add(-2 * time.Hour)}
	latest := func(b Build) Build { b.Latest = true; return b }
	pendingA := Build{Key: keyA, Smoke: "pending", Created: now}
	failedA := &Failure{Image: "i", Key: keyA, At: now.Add(-10 * time.Minute), Stage: StageBuild, InputsAtFault: true, Error: "RUN exit 1"}
	for _, tc := range []struct {
		name   string
		spec   *Spec
		builds []Build
		failed *Failure
		opts   DecideOptions
		want   Action
		reason string
	}{
		{"first build", spec, nil, nil, DecideOptions{}, ActionBuild, "no build yet"},
		{"served", spec, []Build{latest(passedA)}, nil, DecideOptions{}, ActionNone, "serves"},
		{"inputs changed", spec, []Build{latest(passedB)}, nil, DecideOptions{}, ActionBuild, "inputs changed (serving bbbbbbbbbbbb"},
		{"passed, not latest: retag", spec, []Build{passedA, latest(passedB)}, nil, DecideOptions{}, ActionTag, "moves to it (serving bbbbbbbbbbbb)"},
		{"passed, no latest at all: retag", spec, []Build{passedA}, nil, DecideOptions{}, ActionTag, "serving nothing"},
		{"a build cut short is no build", spec, []Build{pendingA, latest(passedB)}, nil, DecideOptions{}, ActionBuild, "inputs changed"},
		{"forced", spec, []Build{latest(passedA)}, nil, DecideOptions{Force: true}, ActionBuild, "forced"},
		{"failed recently: held", spec, []Build{latest(passedB)}, failedA, DecideOptions{Now: now}, ActionHold, "retried at 08:20:00"},
		{"held, but retried by hand", spec, []Build{latest(passedB)}, failedA, DecideOptions{Now: now, Retry: true}, ActionBuild, "inputs changed"},
		{"held, but forced", spec, []Build{latest(passedB)}, failedA, DecideOptions{Now: now, Force: true}, ActionBuild, "forced"},
		{"hold over", spec, []Build{latest(passedB)}, failedA, DecideOptions{Now: now.Add(RetryFailedAfter)}, ActionBuild, "inputs changed"},
		{"failed, not the inputs' fault", spec, nil, &Failure{Key: keyA, At: now, Stage: StageBuild}, DecideOptions{Now: now}, ActionBuild, "no build yet"},
		{"failed, other key", spec, nil, &Failure{Key: keyB, At: now, InputsAtFault: true}, DecideOptions{Now: now}, ActionBuild, "no build yet"},
		{"pin: move latest", pinned, []Build{latest(passedA), passedB}, nil, DecideOptions{}, ActionPin, "pinned to build bbbbbbbbbbbb"},
		{"pin: served", pinned, []Build{passedA, latest(passedB)}, nil, DecideOptions{}, ActionNone, "pinned build bbbbbbbbbbbb serves"},
		{"pin wins over force", pinned, []Build{passedA, latest(passedB)}, nil, DecideOptions{Force: true}, ActionNone, "pinned"},
		{"pin: no such build", pinned, []Build{latest(passedA)}, nil, DecideOptions{}, ActionError, "kept: aaaaaaaaaaaa"},
		{"pin: ambiguous", &Spec{Image: "i", Pin: "ab"}, []Build{
			{Key: "ab" + keyA[2:], Smoke: smokePassed}, {Key: "ab" + keyB[2:], Smoke: smokePassed}}, nil, DecideOptions{}, ActionError, "matches 2 builds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.spec, tc.builds, tc.failed, tc.opts)
			if d.Action != tc.want || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Decide = %s %q, want %s with %q", d.Action, d.Reason, tc.want, tc.reason)
			}
			if (d.Action == ActionTag || d.Action == ActionPin || d.Action == ActionNone) && d.Build == nil {
				t.Error("no build to serve")
			}
			if wantUntil := tc.failed != nil && d.Action == ActionHold; wantUntil != !d.HeldUntil.IsZero() ||
				wantUntil && !d.HeldUntil.Equal(tc.failed.At.Add(RetryFailedAfter)) {
				t.Errorf("HeldUntil %v", d.HeldUntil)
			}
		})
	}
}

func TestBuildErrorInputsAtFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *BuildError
		want bool
	}{
		{"no Dockerfile", &BuildError{Stage: StageContext, Err: errors.New("no Dockerfile")}, true},
		{"repo not fetched", &BuildError{Stage: StageContext, Err: ErrNotFetched}, false},
		{"base failed", &BuildError{Stage: StageContext, Err: ErrBaseFailed}, false},
		{"lint", &BuildError{Stage: StageLint}, true},
		{"a step failed", &BuildError{Stage: StageBuild, Log: "Step 2/3 : RUN false\n"}, true},
		{"a step failed on podman", &BuildError{Stage: StageBuild, Log: "STEP 2/2: RUN echo installing; exit 3\ninstalling\n"}, true},
		{"engine unreachable", &BuildError{Stage: StageBuild, Log: ""}, false},
		{"smoke", &BuildError{Stage: StageSmoke}, true},
		{"tag", &BuildError{Stage: StageTag}, false},
	} {
		if got := tc.err.InputsAtFault(); got != tc.want {
			t.Errorf("%s: InputsAtFault = %v, want %v", tc.name, got, tc.want)
		}
		// What a pass does next follows (package retry).
		if got, want := retry.Of(fmt.Errorf("pass: %w", tc.err)).Kind, map[bool]retry.Kind{true: retry.OnChange, false: retry.Soon}[tc.want]; got != want {
			t.Errorf("%s: retry %s, want %s", tc.name, got, want)
		}
	}
}
