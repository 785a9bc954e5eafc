package images

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/manifest"
)

// Labels every build carries (see imageref, where packages that only read
// them find them).
const (
	LabelImage    = imageref.LabelImage
	LabelBuildKey = imageref.LabelBuildKey
	LabelSource   = imageref.LabelSource
)

// smokePassed is Build.Smoke of a passed build.
const smokePassed = "passed"

// LatestTag is the tag that serves an image.
const LatestTag = "latest"

// Options tune a Builder.
type Options struct {
	// Concurrency bounds the builds running at once (≥ 1).
	Concurrency int
	// Timeout bounds one build, smoke test and tagging included.
	Timeout time.Duration
	// Keep is how many passed builds of each image Prune keeps.
	Keep int
	// Logger gets one line per build decision; nil discards.
	Logger *slog.Logger
	// Registry, when set (host[:port]), receives every passed build
	// before it is published (see push.go).
	Registry string
	// RegistryAuth returns the registry's credentials encoded for the
	// engine (X-Registry-Auth), asked at each push so that a changed
	// credentials file is read again; nil for a registry without
	// authentication. Its value never appears in a log or an error.
	RegistryAuth func() (string, error)
	// Site is the name of the site the builds belong to: they are labelled
	// with it and tagged in its repositories (imageref.Repository), and
	// the Builder sees, serves and prunes no other site's builds. Empty
	// only for a Builder used on its own (tests): plain image names then.
	Site string
}

// OptionsFrom applies the built-in defaults to the build: section of
// courses.yaml.
func OptionsFrom(b manifest.Build, logger *slog.Logger) Options {
	o := Options{Concurrency: b.Concurrency, Timeout: time.Duration(b.Timeout), Keep: b.Keep, Logger: logger}
	if o.Concurrency <= 0 {
		o.Concurrency = manifest.DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = manifest.DefaultBuildTO
	}
	if o.Keep <= 0 {
		o.Keep = manifest.DefaultKeep
	}
	return o
}

// Builder builds images exactly when their build key has no passed build
// yet (or when forced), smoke-tests each build and only then moves I:latest.
// It is safe for concurrent use: one build per image at a time, at most
// Options.Concurrency builds overall.
type Builder struct {
	engine Engine
	opts   Options
	log    *slog.Logger
	sem    chan struct{}

	mu       sync.Mutex
	locks    map[string]chan struct{} // per image, capacity 1
	last     map[string]Result        // last build result per image
	failures map[string]Failure       // last failure per image, until a success
	swept    map[string]bool          // images whose smoke leftovers Prune removed
}

// NewBuilder returns a Builder over engine.
func NewBuilder(engine Engine, opts Options) *Builder {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Keep <= 0 {
		opts.Keep = manifest.DefaultKeep
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Builder{
		engine: engine, opts: opts, log: logger,
		sem:      make(chan struct{}, opts.Concurrency),
		locks:    map[string]chan struct{}{},
		last:     map[string]Result{},
		failures: map[string]Failure{},
		swept:    map[string]bool{},
	}
}

// EnsureOptions are per-call options of Ensure.
type EnsureOptions struct {
	// Force rebuilds without the engine's cache even when the key has a
	// passed build (the scheduled rebuild, nbh-sync build --force).
	Force bool
	// Retry ignores the hold on inputs that failed recently: an operator
	// asked for this build.
	Retry bool
	// Log receives the build log as plain lines while it runs; nil discards.
	Log io.Writer
}

// Result is the outcome of Ensure.
type Result struct {
	Image  string `json:"image"`
	Key    string `json:"key"`
	Source string `json:"source"`
	// ImageID is the image I:latest points at afterwards.
	ImageID string `json:"image_id,omitempty"`
	// Action is what Ensure decided (see Decide).
	Action Action `json:"action,omitempty"`
	// Built is true when a build ran (and passed).
	Built bool `json:"built"`
	// Pinned is true when I:latest serves a pinned build.
	Pinned bool `json:"pinned,omitempty"`
	// Log is the full build log (lint, build, smoke test) when a build ran.
	Log      string        `json:"log,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
	Err      string        `json:"error,omitempty"`
}

// Last returns the result of the latest Ensure of image that ran a build
// or failed, for status pages.
func (b *Builder) Last(image string) (Result, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.last[image]
	return r, ok
}

// lock takes image's build lock, or fails when ctx ends first.
func (b *Builder) lock(ctx context.Context, image string) (unlock func(), err error) {
	b.mu.Lock()
	ch, ok := b.locks[image]
	if !ok {
		ch = make(chan struct{}, 1)
		b.locks[image] = ch
	}
	b.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("image %s: wait for build lock: %w", image, ctx.Err())
	}
}

// Failure returns the last failure of image, if it has not built since.
func (b *Builder) Failure(image string) (Failure, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.failures[image]
	return f, ok
}

// Failures returns every image's last failure, for keeping across restarts.
func (b *Builder) Failures() []Failure {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Failure, 0, len(b.failures))
	for _, f := range b.failures {
		out = append(out, f)
	}
	slices.SortFunc(out, func(x, y Failure) int { return strings.Compare(x.Image, y.Image) })
	return out
}

// RestoreFailures brings back failures kept by an earlier process; a
// failure this Builder saw itself wins.
func (b *Builder) RestoreFailures(fs []Failure) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range fs {
		if _, ok := b.failures[f.Image]; !ok {
			b.failures[f.Image] = f
		}
	}
}

// Decide returns what Ensure would do about spec now, doing nothing.
func (b *Builder) Decide(ctx context.Context, spec *Spec, opts DecideOptions) (Decision, error) {
	builds, unscoped, err := b.builds(ctx, spec.Image, opts.Listing)
	if err != nil {
		return Decision{}, err
	}
	// An unscoped build of inputs the site has no passed build of is as
	// good as one: adopting it spares a rebuild of every image on the
	// upgrade that scoped them.
	for _, u := range unscoped {
		if !slices.ContainsFunc(builds, func(bd Build) bool { return bd.Key == u.Key && bd.Smoke == smokePassed }) {
			builds = append(builds, u)
		}
	}
	var failed *Failure
	if f, ok := b.Failure(spec.Image); ok {
		failed = &f
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	return Decide(spec, builds, failed, opts), nil
}

// Ensure makes I:latest serve spec as Decide says: the pinned build when
// spec.Pin is set (no build then), else the passed build of spec.Key,
// building it first when there is none or when forced. A failed build or
// smoke test returns a *BuildError with the log and leaves I:latest where
// it was; inputs held after a recent failure return a *HeldError.
func (b *Builder) Ensure(ctx context.Context, spec *Spec, opts EnsureOptions) (Result, error) {
	res := Result{Image: spec.Image, Key: spec.Key, Source: spec.Source, Started: time.Now(), Pinned: spec.Pin != ""}
	unlock, err := b.lock(ctx, spec.Image)
	if err != nil {
		return res, err
	}
	defer unlock()

	d, err := b.Decide(ctx, spec, DecideOptions{Force: opts.Force, Retry: opts.Retry, Now: res.Started})
	if err != nil {
		return res, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	res.Action = d.Action
	switch d.Action {
	case ActionNone:
		res.ImageID = d.Build.ImageID
		if err := b.ensurePushed(ctx, spec, *d.Build); err != nil {
			return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: StagePush, Err: err}
		}
		b.succeeded(spec.Image)
		res.Duration = time.Since(res.Started)
		return res, nil
	case ActionTag, ActionPin:
		res.ImageID = d.Build.ImageID
		res.Duration = time.Since(res.Started)
		// Nodes must be able to pull what I:latest comes to serve.
		if err := b.ensurePushed(ctx, spec, *d.Build); err != nil {
			return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: StagePush, Err: err}
		}
		if d.Build.Adopt {
			// A build from before images were site-scoped, of exactly
			// these inputs: this site's key tag makes it one of its own.
			if err := b.engine.ImageTag(ctx, d.Build.ImageID, b.keyTag(spec.Image, d.Build.Key)); err != nil {
				return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: StageTag, Err: err}
			}
			b.log.InfoContext(ctx, "adopted an unscoped build", "image", spec.Image, "key", shortid.Of(d.Build.Key), "id", d.Build.ImageID)
		}
		if err := b.engine.ImageTag(ctx, d.Build.ImageID, b.latest(spec.Image)); err != nil {
			return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: StageTag, Err: err}
		}
		b.log.InfoContext(ctx, "tagged", "image", spec.Image, "action", d.Action, "key", shortid.Of(d.Build.Key), "id", d.Build.ImageID)
		b.succeeded(spec.Image)
		return res, nil
	case ActionHold:
		res.Err = d.Reason
		return res, &HeldError{Image: spec.Image, Reason: d.Reason, Until: d.HeldUntil}
	case ActionError:
		res.Err = d.Reason
		return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: StageTag, Err: errors.New(d.Reason)}
	}

	var logBuf bytes.Buffer
	out := io.Writer(&logBuf)
	if opts.Log != nil {
		out = io.MultiWriter(&logBuf, opts.Log)
	}
	id, err := b.build(ctx, spec, opts.Force, out)
	res.Log = logBuf.String()
	res.Duration = time.Since(res.Started)
	if err != nil {
		var be *BuildError
		if !errors.As(err, &be) {
			be = &BuildError{Image: spec.Image, Key: spec.Key, Stage: StageBuild, Err: err}
		}
		be.Log = res.Log
		res.Err = be.Error()
		b.record(res)
		b.failed(Failure{Image: spec.Image, Key: spec.Key, At: res.Started, Stage: be.Stage,
			InputsAtFault: be.InputsAtFault() && ctx.Err() == nil, Error: be.Error(), LogTail: LogTail(res.Log, logTailLines)})
		// The event only: the error is returned (and logged once, at
		// the end of the pass).
		b.log.InfoContext(ctx, "build failed", "image", spec.Image, "key", spec.ShortKey(), "stage", be.Stage)
		return res, be
	}
	res.Built, res.ImageID = true, id
	b.record(res)
	b.succeeded(spec.Image)
	b.log.InfoContext(ctx, "built", "image", spec.Image, "key", spec.ShortKey(), "id", id, "duration", res.Duration)
	return res, nil
}

// Fail records a failure of image that happened before any build could
// start (its spec could not be made), so that status pages show it.
func (b *Builder) Fail(err error) {
	var be *BuildError
	if !errors.As(err, &be) {
		return
	}
	b.failed(Failure{Image: be.Image, Key: be.Key, At: time.Now(), Stage: be.Stage, InputsAtFault: be.InputsAtFault(), Error: be.Error()})
}

func (b *Builder) failed(f Failure) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures[f.Image] = f
}

func (b *Builder) succeeded(image string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, image)
}

func (b *Builder) record(r Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last[r.Image] = r
}

// build runs lint, the build and the smoke test, then publishes. The tags
// at each step are such that a process killed anywhere leaves nothing
// servable that has not passed:
//  1. the build is tagged I:build-<key> only: a scratch tag, and no
//     image with it counts as built;
//  2. after the smoke test, I:<key> — the mark of a passed build — then the
//     scratch tag goes;
//  3. I:latest moves, last.
//
// A build the engine did not finish is never tagged at all.
func (b *Builder) build(ctx context.Context, spec *Spec, force bool, out io.Writer) (string, error) {
	fail := func(stage Stage, err error) error {
		return &BuildError{Image: spec.Image, Key: spec.Key, Stage: stage, Err: err}
	}
	var lintErrs []string
	for _, p := range spec.Lint() {
		fmt.Fprintln(out, p.String())
		if !p.Warning {
			lintErrs = append(lintErrs, p.String())
		}
	}
	if len(lintErrs) > 0 {
		return "", fail(StageLint, errors.New(strings.Join(lintErrs, "; ")))
	}

	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return "", fail(StageBuild, fmt.Errorf("wait for a build slot: %w", ctx.Err()))
	}
	if b.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.Timeout)
		defer cancel()
	}

	firstTag := b.repo(spec.Image) + ":build-" + spec.ShortKey()
	fmt.Fprintf(out, "building %s as %s (key %s, source %s)\n", spec.Image, b.repo(spec.Image), spec.Key, spec.Source)
	labels := map[string]string{LabelImage: spec.Image, LabelBuildKey: spec.Key, LabelSource: spec.Source}
	if b.opts.Site != "" {
		labels[imageref.LabelSite] = b.opts.Site
	}
	for _, base := range spec.Bases {
		fmt.Fprintf(out, "FROM %s means this site's %s\n", base, b.latest(base))
	}
	opts := BuildOptions{
		Tags:       []string{firstTag},
		Dockerfile: spec.DockerfileName,
		BuildArgs:  spec.BuildArgs,
		// Each label is one more step of the classic builder (a container
		// commit): keep them to these four.
		Labels:  labels,
		NoCache: force,
	}
	var id string
	var err error
	for attempt := 1; ; attempt++ {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(spec.WriteContext(pw, b.latest)) }()
		id, err = b.runBuild(ctx, pr, opts, out)
		pr.Close()
		if err == nil || !imageref.BuildRaced(err) || attempt == storeRaceAttempts {
			break
		}
		fmt.Fprintf(out, "the engine's image store changed under the build (an image removed meanwhile): building again (%d of %d)\n", attempt+1, storeRaceAttempts)
	}
	if err != nil {
		return "", fail(StageBuild, err)
	}
	// From here on, a failure removes the scratch tag; the image itself is
	// dangling and goes with the next Prune.
	drop := func() {
		if err := b.engine.ImageRemove(context.WithoutCancel(ctx), firstTag); err != nil && !errors.Is(err, ErrNotFound) {
			b.log.WarnContext(ctx, "remove failed build", "image", spec.Image, "tag", firstTag, "err", err)
		}
	}

	fmt.Fprintf(out, "smoke test of %s\n", id)
	if err := b.smoke(ctx, spec, id, out); err != nil {
		fmt.Fprintf(out, "smoke test failed: %v\n", err)
		drop()
		return "", fail(StageSmoke, err)
	}
	fmt.Fprintln(out, "smoke test passed")
	if _, err := b.push(ctx, spec.Image, spec.Key, id, out); err != nil {
		drop()
		return "", fail(StagePush, err)
	}

	keyTag := b.keyTag(spec.Image, spec.Key)
	if err := b.engine.ImageTag(ctx, id, keyTag); err != nil {
		drop()
		return "", fail(StageTag, err)
	}
	drop() // only untags: the key tag holds the image now
	if err := b.engine.ImageTag(ctx, id, b.latest(spec.Image)); err != nil {
		return "", fail(StageTag, err)
	}
	fmt.Fprintf(out, "published %s and %s = %s\n", keyTag, b.latest(spec.Image), id)
	return id, nil
}

// repo is the engine repository of this site's builds of image.
func (b *Builder) repo(image string) string { return imageref.Repository(b.opts.Site, image) }

// latest is the reference that serves image: repo:latest.
func (b *Builder) latest(image string) string { return b.repo(image) + ":" + LatestTag }

// keyTag is the mark of a passed build of image with this key: repo:<short key>.
func (b *Builder) keyTag(image, key string) string { return b.repo(image) + ":" + key[:ShortKeyLen] }

// Passed reports whether a build with these tags and build key passed its
// smoke test, in the repository repo: only then does it carry the tag of
// its own key (repo:<short key>). A build cut short carries at most its
// scratch tag.
func Passed(repo string, tags []string, key string) bool {
	return len(key) >= ShortKeyLen && slices.Contains(tags, repo+":"+key[:ShortKeyLen])
}

// smoke runs the image's check in a throwaway container: the smoke command
// to exit 0, or by default the start script present and executable, read
// through the engine on a container that never starts (no shell needed).
func (b *Builder) smoke(ctx context.Context, spec *Spec, id string, out io.Writer) error {
	// A namespaced image (nbhosting/scipy-notebook) has a / that no
	// container name may hold.
	name := fmt.Sprintf("%s-smoke-%s-%s", strings.ReplaceAll(spec.Image, "/", "_"), spec.ShortKey(), randHex(4))
	b.sweepSmoke(ctx, spec.Image)
	cfg := ContainerConfig{Name: name, Image: id, Labels: map[string]string{
		LabelImage: spec.Image, LabelBuildKey: spec.Key, imageref.LabelSmokeOf: b.repo(spec.Image)}}
	if len(spec.Smoke) > 0 {
		cfg.Entrypoint, cfg.Cmd = spec.Smoke[:1], spec.Smoke[1:]
	} else {
		cfg.Entrypoint = []string{StartScriptPath}
	}
	cid, err := b.engine.ContainerCreate(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.engine.ContainerRemove(context.WithoutCancel(ctx), cid); err != nil {
			b.log.WarnContext(ctx, "remove smoke container", "image", spec.Image, "container", cid, "err", err)
		}
	}()
	if len(spec.Smoke) == 0 {
		return checkExecutable(ctx, b.engine, cid, StartScriptPath)
	}
	if err := b.engine.ContainerStart(ctx, cid); err != nil {
		return err
	}
	code, err := b.engine.ContainerWait(ctx, cid)
	logs, lerr := b.engine.ContainerLogs(ctx, cid)
	if lerr == nil && logs != "" {
		fmt.Fprint(out, logs)
		if !strings.HasSuffix(logs, "\n") {
			fmt.Fprintln(out)
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("smoke command %q exited with status %d", spec.Smoke, code)
	}
	return nil
}

// sweepSmoke removes the smoke-test containers of image that a build cut
// short (the process killed between creating one and removing it) left:
// each keeps its unpassed build from being pruned. The caller holds
// image's lock, so no build of image is testing one now. A failure only
// leaves them for the next sweep: before the image's next smoke test, or
// the first prune of another process.
func (b *Builder) sweepSmoke(ctx context.Context, image string) {
	ids, err := b.engine.ContainerList(ctx, imageref.LabelSmokeOf+"="+b.repo(image))
	if err != nil {
		b.log.WarnContext(ctx, "list smoke-test containers", "image", image, "err", err)
		return
	}
	for _, id := range ids {
		if err := b.engine.ContainerRemove(context.WithoutCancel(ctx), id); err != nil {
			b.log.WarnContext(ctx, "remove smoke-test container", "image", image, "container", id, "err", err)
			continue
		}
		b.log.InfoContext(ctx, "removed a smoke-test container an interrupted build left", "image", image, "container", id)
	}
}

// checkExecutable checks that p is an executable regular file in the
// container, following symlinks a few times.
func checkExecutable(ctx context.Context, e Engine, cid, p string) error {
	for range 8 {
		st, err := e.ContainerStatPath(ctx, cid, p)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%s is missing from the image", StartScriptPath)
			}
			return err
		}
		if st.Mode.IsRegular() {
			if st.Mode.Perm()&0o111 == 0 {
				return fmt.Errorf("%s is not executable (mode %v)", StartScriptPath, st.Mode)
			}
			return nil
		}
		if st.Mode&os.ModeSymlink == 0 || st.LinkTarget == "" || st.LinkTarget == p {
			return fmt.Errorf("%s is not a regular file (mode %v)", StartScriptPath, st.Mode)
		}
		p = st.LinkTarget
	}
	return fmt.Errorf("%s: too many symlinks", StartScriptPath)
}

// jsonMessage is the part of the engine's build stream we read.
type jsonMessage struct {
	Stream   string `json:"stream"`
	Status   string `json:"status"`
	Progress string `json:"progress"`
	ID       string `json:"id"`
	Error    string `json:"error"`
	ErrorDet *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// storeRaceAttempts is how many times build runs one spec's build while
// each attempt fails on a store race (imageref.BuildRaced).
const storeRaceAttempts = 3

// runBuild runs one engine build, writing its log to out as plain lines,
// and returns the built image's ID.
func (b *Builder) runBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions, out io.Writer) (string, error) {
	rc, err := b.engine.ImageBuild(ctx, buildContext, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	var id string
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			if ctx.Err() != nil {
				return "", fmt.Errorf("build interrupted: %w", context.Cause(ctx))
			}
			return "", fmt.Errorf("read build output: %w", err)
		}
		switch {
		case m.Error != "" || m.ErrorDet != nil:
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDet.Message
			}
			fmt.Fprintln(out, msg)
			return "", errors.New(msg)
		case m.Stream != "":
			io.WriteString(out, m.Stream)
		case m.Status != "":
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + line
			}
			if m.Progress != "" {
				line += " " + m.Progress
			}
			fmt.Fprintln(out, line)
		case len(m.Aux) > 0:
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
	if ctx.Err() != nil {
		return "", fmt.Errorf("build interrupted: %w", context.Cause(ctx))
	}
	if id == "" {
		return "", errors.New("the engine reported no image ID")
	}
	return id, nil
}

// newestFirst sorts images by creation time, newest first (ID breaks ties).
func newestFirst(list []ImageInfo) []ImageInfo {
	list = slices.Clone(list)
	slices.SortFunc(list, func(a, b ImageInfo) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

func randHex(n int) string {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return hex.EncodeToString(p)
}
