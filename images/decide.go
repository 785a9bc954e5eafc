package images

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/internal/shortid"
)

// Action is what a pass does about one image.
type Action string

// The decisions of Decide.
const (
	// ActionNone: I:latest serves a passed build of the inputs already.
	ActionNone Action = "none"
	// ActionTag: a passed build of the inputs exists, but I:latest points
	// elsewhere (a process stopped between two tags, or the inputs went
	// back to an earlier state): I:latest moves to it, nothing is built.
	ActionTag Action = "tag"
	// ActionBuild: no passed build of the inputs exists (or a rebuild is
	// forced): build, smoke-test, then move I:latest.
	ActionBuild Action = "build"
	// ActionPin: I:latest moves to the pinned build.
	ActionPin Action = "pin"
	// ActionHold: these inputs failed to build less than RetryFailedAfter
	// ago, through their own fault; passes leave them alone until then.
	ActionHold Action = "hold"
	// ActionError: nothing can be done (a pin that matches no kept build).
	ActionError Action = "error"
)

// RetryFailedAfter is how long passes leave inputs that failed to build
// alone; a new commit (new inputs), --force or nbh-sync build retries at
// once. A broken Dockerfile is not rebuilt every pass.
const RetryFailedAfter = 30 * time.Minute

// Failure is the last failed build of an image.
type Failure struct {
	Image string    `json:"image"`
	Key   string    `json:"key"`
	At    time.Time `json:"at"`
	Stage Stage     `json:"stage"`
	// InputsAtFault is true when the inputs failed (see
	// BuildError.InputsAtFault): only such a failure is held.
	InputsAtFault bool   `json:"inputs_at_fault"`
	Error         string `json:"error"`
	// LogTail is the end of the build log, for status pages.
	LogTail string `json:"log_tail,omitempty"`
}

// DecideOptions are the parts of a decision that are not observed state.
type DecideOptions struct {
	// Force rebuilds even when a passed build of the inputs exists.
	Force bool
	// Retry ignores the hold on inputs that failed recently (an operator's
	// nbh-sync build).
	Retry bool
	Now   time.Time
	// Listing, for Builder.Decide, is the builds listed once (Builder.List)
	// for deciding about many images; nil lists the image's own.
	Listing *Listing
}

// Decision is what to do about one image, and why.
type Decision struct {
	Action Action `json:"action"`
	Reason string `json:"reason"`
	// Build is the build I:latest serves or is to serve (ActionNone,
	// ActionTag, ActionPin).
	Build *Build `json:"-"`
	// Serving is the key I:latest serves now ("" before a first build).
	Serving string `json:"serving,omitempty"`
	// HeldUntil is when a hold ends (ActionHold).
	HeldUntil time.Time `json:"-"`
}

// Decide is the one build decision, shared by plan (which predicts) and
// Ensure (which acts): given the spec, the builds the engine holds of its
// image (any order) and the image's last failure, if any. It is pure.
func Decide(spec *Spec, builds []Build, failed *Failure, opts DecideOptions) Decision {
	var d Decision
	var passed []Build
	for _, bd := range builds {
		if bd.Latest {
			d.Serving = bd.Key
		}
		if bd.Smoke == smokePassed {
			passed = append(passed, bd)
		}
	}
	slices.SortStableFunc(passed, func(a, b Build) int { return b.Created.Compare(a.Created) })

	if spec.Pin != "" {
		return decidePin(spec, passed, d)
	}
	i := slices.IndexFunc(passed, func(bd Build) bool { return bd.Key == spec.Key })
	switch {
	case opts.Force:
		d.Action, d.Reason = ActionBuild, "forced rebuild, without the engine's cache"
		return d
	case i >= 0 && passed[i].Latest:
		d.Action, d.Reason, d.Build = ActionNone, "a passed build of key "+spec.ShortKey()+" serves", &passed[i]
		return d
	case i >= 0:
		d.Action, d.Build = ActionTag, &passed[i]
		what := "a passed build"
		if passed[i].Adopt {
			what = "an unscoped build (made before images were site-scoped)"
		}
		d.Reason = fmt.Sprintf("%s of key %s exists; %s:latest moves to it (serving %s)", what, spec.ShortKey(), spec.Image, orNone(shortid.Of(d.Serving)))
		return d
	}
	if f := failed; f != nil && f.Key == spec.Key && f.InputsAtFault && !opts.Retry {
		if until := f.At.Add(RetryFailedAfter); opts.Now.Before(until) {
			d.Action, d.HeldUntil = ActionHold, until
			d.Reason = fmt.Sprintf("build %s failed at %s (%s: %s); retried at %s, on a new commit, or with nbh-sync build",
				spec.ShortKey(), f.At.Format(time.TimeOnly), f.Stage, firstLine(f.Error), until.Format(time.TimeOnly))
			return d
		}
	}
	d.Action = ActionBuild
	if d.Serving == "" {
		d.Reason = "no build yet"
	} else {
		d.Reason = fmt.Sprintf("inputs changed (serving %s, inputs now %s)", shortid.Of(d.Serving), spec.ShortKey())
	}
	return d
}

func decidePin(spec *Spec, passed []Build, d Decision) Decision {
	pin := strings.ToLower(spec.Pin)
	var match []Build
	keys := map[string]bool{}
	for _, bd := range passed {
		if strings.HasPrefix(bd.Key, pin) && !keys[bd.Key] {
			match = append(match, bd)
		}
		keys[bd.Key] = true
	}
	switch len(match) {
	case 0:
		kept := make([]string, 0, len(keys))
		for k := range keys {
			kept = append(kept, shortid.Of(k))
		}
		slices.Sort(kept)
		d.Action = ActionError
		d.Reason = fmt.Sprintf("pin %s: no kept build of %s has that key (kept: %s)", spec.Pin, spec.Image, strings.Join(kept, ", "))
	case 1:
		d.Build = &match[0]
		if match[0].Latest {
			d.Action, d.Reason = ActionNone, "pinned build "+shortid.Of(match[0].Key)+" serves"
		} else {
			d.Action, d.Reason = ActionPin, "pinned to build "+shortid.Of(match[0].Key)+"; "+spec.Image+":latest moves to it"
		}
	default:
		d.Action = ActionError
		d.Reason = fmt.Sprintf("pin %s: matches %d builds of %s; give more digits", spec.Pin, len(match), spec.Image)
	}
	return d
}

// Stage is the step of a build that failed.
type Stage string

// The stages of a build.
const (
	// StageContext: the build's inputs cannot be gathered (no Dockerfile,
	// a FROM cycle, a base that cannot be built, a repo not fetched).
	StageContext Stage = "context"
	// StageLint: the Dockerfile breaks a rule the lint can prove.
	StageLint Stage = "lint"
	// StageBuild: the engine's build failed or could not run.
	StageBuild Stage = "build"
	// StageSmoke: the built image failed its smoke test.
	StageSmoke Stage = "smoke"
	// StageTag: moving a tag (I:<key>, I:latest, a pin) failed.
	StageTag Stage = "tag"
)

// BuildError is a failed build of an image; the previous I:latest still
// serves.
type BuildError struct {
	Image string
	Key   string
	Stage Stage
	// Log is the log up to the failure.
	Log string
	Err error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("image %s: %s: %v", e.Image, e.Stage, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

// Terminal tells the pass's retry (package retry) that the same inputs
// would fail again: only a new commit, or an operator's build, retries.
func (e *BuildError) Terminal() bool { return e.InputsAtFault() }

// InputsAtFault reports whether the build's inputs failed — the Dockerfile,
// its context or the built image — so that building them again unchanged
// would fail again; false when the engine was out of reach, the build was
// cut short, or the inputs are not there yet (a repo not fetched, a base
// image that failed), which the next pass may well fix.
func (e *BuildError) InputsAtFault() bool {
	switch e.Stage {
	case StageContext:
		return !errors.Is(e.Err, ErrNotFetched) && !errors.Is(e.Err, ErrBaseFailed)
	case StageLint, StageSmoke:
		return true
	case StageBuild:
		// The classic builder logs "Step N/M" for each instruction it
		// runs (podman's buildah "STEP N/M:"): a failure after one is the
		// Dockerfile's.
		return strings.Contains(e.Log, "Step ") || strings.Contains(e.Log, "STEP ")
	}
	return false
}

// HeldError is returned by Ensure for inputs held after a recent failure.
type HeldError struct {
	Image  string
	Reason string
	// Until is when the hold ends (Decision.HeldUntil).
	Until time.Time
}

// RetryAt tells the pass's retry (package retry) when the hold ends.
func (e *HeldError) RetryAt() time.Time { return e.Until }

func (e *HeldError) Error() string { return "image " + e.Image + ": " + e.Reason }

// logTailLines is how much of a failed build's log a Failure keeps.
const logTailLines = 20

// LogTail returns the last n lines of log.
func LogTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
