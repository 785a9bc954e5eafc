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

	"github.com/nbhosting/nbh-sync/manifest"
)

// Labels every build carries.
const (
	LabelImage    = "org.nbhosting.image"
	LabelBuildKey = "org.nbhosting.build-key"
	LabelSource   = "org.nbhosting.source"
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
	// before it is published (see push.go); RegistryAuth encodes its
	// credentials (RegistryAuth()), empty for none.
	Registry, RegistryAuth string
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

	mu    sync.Mutex
	locks map[string]chan struct{} // per image, capacity 1
	last  map[string]Result        // last build result per image
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
		sem:   make(chan struct{}, opts.Concurrency),
		locks: map[string]chan struct{}{},
		last:  map[string]Result{},
	}
}

// EnsureOptions are per-call options of Ensure.
type EnsureOptions struct {
	// Force rebuilds without the engine's cache even when the key has a
	// passed build (the scheduled rebuild, nbh-sync build --force).
	Force bool
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

// BuildError is a failed lint, build, smoke test or publication; the
// previous I:latest still serves.
type BuildError struct {
	Image string
	Key   string
	// Stage is "lint", "build", "smoke", "push", "publish" or "pin".
	Stage string
	// Log is the log up to the failure.
	Log string
	Err error
}

func (e *BuildError) Error() string {
	return fmt.Sprintf("image %s: %s: %v", e.Image, e.Stage, e.Err)
}

func (e *BuildError) Unwrap() error { return e.Err }

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

// Ensure makes I:latest serve spec: the pinned build when spec.Pin is set
// (no build then), else the passed build of spec.Key, building it first
// when there is none or when forced. A failed build or smoke test returns
// a *BuildError with the log and leaves I:latest where it was.
func (b *Builder) Ensure(ctx context.Context, spec *Spec, opts EnsureOptions) (Result, error) {
	res := Result{Image: spec.Image, Key: spec.Key, Source: spec.Source, Started: time.Now()}
	unlock, err := b.lock(ctx, spec.Image)
	if err != nil {
		return res, err
	}
	defer unlock()

	if spec.Pin != "" {
		res.Pinned = true
		id, err := b.pin(ctx, spec)
		res.ImageID = id
		res.Duration = time.Since(res.Started)
		return res, err
	}

	builds, err := b.passed(ctx, spec.Image, LabelBuildKey+"="+spec.Key)
	if err != nil {
		return res, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	if len(builds) > 0 && !opts.Force {
		newest := builds[0]
		res.ImageID = newest.ID
		if err := b.ensurePushed(ctx, spec, newest); err != nil {
			return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: "push", Err: err}
		}
		if err := b.publish(ctx, spec, newest); err != nil {
			return res, &BuildError{Image: spec.Image, Key: spec.Key, Stage: "publish", Err: err}
		}
		res.Duration = time.Since(res.Started)
		return res, nil
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
			be = &BuildError{Image: spec.Image, Key: spec.Key, Stage: "build", Err: err}
		}
		be.Log = res.Log
		res.Err = be.Error()
		b.record(res)
		b.log.Error("build failed", "image", spec.Image, "key", spec.ShortKey(), "stage", be.Stage, "err", be.Err)
		return res, be
	}
	res.Built, res.ImageID = true, id
	b.record(res)
	b.log.Info("built", "image", spec.Image, "key", spec.ShortKey(), "id", id, "duration", res.Duration)
	return res, nil
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
	fail := func(stage string, err error) error {
		return &BuildError{Image: spec.Image, Key: spec.Key, Stage: stage, Err: err}
	}
	var lintErrs []string
	for _, p := range Lint(spec.File, spec.Dockerfile) {
		fmt.Fprintln(out, p.String())
		if !p.Warning {
			lintErrs = append(lintErrs, p.String())
		}
	}
	if len(lintErrs) > 0 {
		return "", fail("lint", errors.New(strings.Join(lintErrs, "; ")))
	}

	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return "", fail("build", fmt.Errorf("wait for a build slot: %w", ctx.Err()))
	}
	if b.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.Timeout)
		defer cancel()
	}

	firstTag := spec.buildTag()
	fmt.Fprintf(out, "building %s (key %s, source %s)\n", spec.Image, spec.Key, spec.Source)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(spec.WriteContext(pw)) }()
	id, err := b.runBuild(ctx, pr, BuildOptions{
		Tags:       []string{firstTag},
		Dockerfile: spec.DockerfileName,
		BuildArgs:  spec.BuildArgs,
		// Each label is one more step of the classic builder (a container
		// commit): keep them to the three of SPEC §3.
		Labels:  map[string]string{LabelImage: spec.Image, LabelBuildKey: spec.Key, LabelSource: spec.Source},
		NoCache: force,
	}, out)
	pr.Close()
	if err != nil {
		return "", fail("build", err)
	}
	// From here on, a failure removes the scratch tag; the image itself is
	// dangling and goes with the next Prune.
	drop := func() {
		if err := b.engine.ImageRemove(context.WithoutCancel(ctx), firstTag); err != nil && !errors.Is(err, ErrNotFound) {
			b.log.Warn("remove failed build", "image", spec.Image, "tag", firstTag, "err", err)
		}
	}

	fmt.Fprintf(out, "smoke test of %s\n", id)
	if err := b.smoke(ctx, spec, id, out); err != nil {
		fmt.Fprintf(out, "smoke test failed: %v\n", err)
		drop()
		return "", fail("smoke", err)
	}
	fmt.Fprintln(out, "smoke test passed")
	if _, err := b.push(ctx, spec, id, out); err != nil {
		drop()
		return "", fail("push", err)
	}

	if err := b.engine.ImageTag(ctx, id, spec.KeyTag()); err != nil {
		drop()
		return "", fail("publish", err)
	}
	drop() // only untags: the key tag holds the image now
	if err := b.engine.ImageTag(ctx, id, spec.Image+":"+LatestTag); err != nil {
		return "", fail("publish", err)
	}
	fmt.Fprintf(out, "published %s and %s:%s = %s\n", spec.KeyTag(), spec.Image, LatestTag, id)
	return id, nil
}

// buildTag is the scratch tag of a build not yet smoke-tested.
func (s *Spec) buildTag() string { return s.Image + ":build-" + s.ShortKey() }

// isPassed reports whether im is a passed build of image: it carries the
// tag of its own build key, which only a passed smoke test puts on it.
func isPassed(image string, im ImageInfo) bool {
	return Passed(image, im.Tags, im.Labels[LabelBuildKey])
}

// Passed reports whether a build of image with these tags and build key
// passed its smoke test: only then does it carry the tag of its own key
// (I:<short key>). A build cut short carries at most its scratch tag.
func Passed(image string, tags []string, key string) bool {
	return len(key) >= ShortKeyLen && slices.Contains(tags, image+":"+key[:ShortKeyLen])
}

// Served reports whether any of tags serves image, that is any tag but the
// scratch tag of a build in progress (I:build-<short key>).
func Served(image string, tags []string) bool {
	return slices.ContainsFunc(tags, func(t string) bool {
		return strings.HasPrefix(t, image+":") && !strings.HasPrefix(t, image+":build-")
	})
}

// passed lists the passed builds of image with the extra labels, newest
// first.
func (b *Builder) passed(ctx context.Context, image string, labels ...string) ([]ImageInfo, error) {
	list, err := b.engine.ImageList(ctx, append([]string{LabelImage + "=" + image}, labels...)...)
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(im ImageInfo) bool { return !isPassed(image, im) })
	return newestFirst(list), nil
}

// publish makes I:latest point at a passed build (a no-op when it does):
// the process may have been killed between the key tag and this one.
func (b *Builder) publish(ctx context.Context, spec *Spec, im ImageInfo) error {
	for _, tag := range []string{spec.Image + ":" + LatestTag} {
		if !slices.Contains(im.Tags, tag) {
			if err := b.engine.ImageTag(ctx, im.ID, tag); err != nil {
				return err
			}
			b.log.Info("tagged", "image", spec.Image, "tag", tag, "id", im.ID)
		}
	}
	return nil
}

// pin points I:latest at the passed build whose key starts with spec.Pin.
func (b *Builder) pin(ctx context.Context, spec *Spec) (string, error) {
	fail := func(err error) error { return &BuildError{Image: spec.Image, Key: spec.Key, Stage: "pin", Err: err} }
	all, err := b.passed(ctx, spec.Image)
	if err != nil {
		return "", fail(err)
	}
	var match []ImageInfo
	keys := map[string]bool{}
	for _, im := range all {
		k := im.Labels[LabelBuildKey]
		if strings.HasPrefix(k, strings.ToLower(spec.Pin)) && !keys[k] {
			match = append(match, im)
		}
		keys[k] = true
	}
	switch len(match) {
	case 0:
		kept := slices.Sorted(func(yield func(string) bool) {
			for k := range keys {
				if !yield(k[:ShortKeyLen]) {
					return
				}
			}
		})
		return "", fail(fmt.Errorf("pin %s: no kept build of %s has that key (kept: %s)", spec.Pin, spec.Image, strings.Join(kept, ", ")))
	case 1:
	default:
		return "", fail(fmt.Errorf("pin %s: matches %d builds of %s; give more digits", spec.Pin, len(match), spec.Image))
	}
	im := match[0]
	if err := b.ensurePushed(ctx, spec, im); err != nil {
		return "", fail(err)
	}
	latest := spec.Image + ":" + LatestTag
	if !slices.Contains(im.Tags, latest) {
		if err := b.engine.ImageTag(ctx, im.ID, latest); err != nil {
			return "", fail(err)
		}
		b.log.Info("pinned", "image", spec.Image, "key", im.Labels[LabelBuildKey][:ShortKeyLen], "id", im.ID)
	}
	return im.ID, nil
}

// smoke runs the image's check in a throwaway container: the smoke command
// to exit 0, or by default the start script present and executable, read
// through the engine on a container that never starts (no shell needed).
func (b *Builder) smoke(ctx context.Context, spec *Spec, id string, out io.Writer) error {
	name := fmt.Sprintf("%s-smoke-%s-%s", spec.Image, spec.ShortKey(), randHex(4))
	cfg := ContainerConfig{Name: name, Image: id, Labels: map[string]string{LabelImage: spec.Image, LabelBuildKey: spec.Key}}
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
			b.log.Warn("remove smoke container", "image", spec.Image, "container", cid, "err", err)
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
