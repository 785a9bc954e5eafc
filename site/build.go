package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
)

// trees gives images the git trees of rev: the config folder at the config
// commit, each course root at the head its mirror holds.
func (s *Site) trees(rev *gitwatch.ConfigRevision) images.Trees {
	src := rev.Sources
	return images.Trees{
		Config:       src.ConfigTree(),
		ConfigSource: fmt.Sprintf("%s@%s", gitwatch.RedactURL(rev.Location.URL), short(rev.Commit.String())),
		Course: func(course string) (*object.Tree, string, string, error) {
			tree, commit, err := src.CourseTree(course)
			if err != nil {
				return nil, "", "", err // e.g. the branch is not in the mirror (yet)
			}
			co := rev.Config.Courses[course]
			repo := co.Repo
			if repo == "." {
				repo = rev.Location.URL
			}
			return tree, "", fmt.Sprintf("%s@%s:%s", gitwatch.RedactURL(repo), short(commit.String()), co.Path), nil
		},
	}
}

// imageBuilder returns the image builder, made from the build: section of the
// first config seen (changing it takes a restart).
func (s *Site) imageBuilder(cfg *manifest.Config) *images.Builder {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.builder == nil {
		opts := images.OptionsFrom(cfg.Build, s.log)
		if cfg.Engine.Swarm() {
			opts.Registry = cfg.Engine.Registry // nodes pull passed builds from there
		}
		s.builder = images.NewBuilder(s.opts.ImageEngine, opts)
	}
	return s.builder
}

// Spec returns the build spec of image under the config in force.
func (s *Site) Spec(ctx context.Context, image string) (*images.Spec, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(rev.Config.ImageNames(), image) {
		return nil, fmt.Errorf("no image %s in courses.yaml (images: %v)", image, rev.Config.ImageNames())
	}
	return images.NewSpec(rev.Config, image, s.trees(rev))
}

// Build makes image serve its current inputs: built when its build key has
// no passed build yet, or always with force. The log streams to out.
func (s *Site) Build(ctx context.Context, image string, force bool, out io.Writer) (images.Result, error) {
	spec, err := s.Spec(ctx, image)
	if err != nil {
		return images.Result{Image: image, Err: err.Error()}, err
	}
	return s.ensure(ctx, spec, force, out)
}

func (s *Site) ensure(ctx context.Context, spec *images.Spec, force bool, out io.Writer) (images.Result, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return images.Result{}, err
	}
	res, err := s.imageBuilder(cfg).Ensure(ctx, spec, images.EnsureOptions{Force: force, Log: out})
	s.mu.Lock()
	switch {
	case err == nil:
		delete(s.failed, spec.Image)
	case inputsFailed(err) && ctx.Err() == nil:
		s.failed[spec.Image] = failure{key: spec.Key, at: time.Now()}
	}
	s.mu.Unlock()
	if err != nil {
		res.Err = err.Error()
	}
	s.buildEvents(ctx, res, err)
	return res, err
}

// BuildAll ensures every image of the config in force. The specs are made
// one after the other (git trees are not safe for concurrent use), then
// the builds run concurrently, bounded by the builder. One image's failure
// does not stop the others; a failed image keeps its previous build.
func (s *Site) BuildAll(ctx context.Context, force bool) ([]images.Result, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	names := rev.Config.ImageNames()
	results := make([]images.Result, len(names))
	errs := make([]error, len(names))
	specs := make([]*images.Spec, len(names))
	trees := s.trees(rev)
	for i, name := range names {
		if specs[i], errs[i] = images.NewSpec(rev.Config, name, trees); errs[i] != nil {
			results[i] = images.Result{Image: name, Err: errs[i].Error()}
			s.buildEvents(ctx, results[i], errs[i])
		}
	}
	var wg sync.WaitGroup
	for i, spec := range specs {
		if spec == nil {
			continue
		}
		if err := s.failedRecently(spec, force); err != nil {
			results[i], errs[i] = images.Result{Image: spec.Image, Key: spec.Key, Err: err.Error()}, err
			continue
		}
		wg.Go(func() { results[i], errs[i] = s.ensure(ctx, spec, force, nil) })
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// inputsFailed reports whether err says the build's inputs are at fault —
// the lint, a build step or the smoke test failed — rather than the
// engine being out of reach or the build cut short, which passes retry.
func inputsFailed(err error) bool {
	var be *images.BuildError
	if !errors.As(err, &be) {
		return false
	}
	switch be.Stage {
	case "lint", "smoke":
		return true
	case "build":
		return strings.Contains(be.Log, "Step ") // the engine ran the Dockerfile
	}
	return false
}

// retryFailedAfter is how long passes leave a build key that failed alone;
// a new commit (a new key), --force or nbh-sync build retries at once.
const retryFailedAfter = 30 * time.Minute

// failedRecently returns an error when spec's key failed to build less
// than retryFailedAfter ago: a broken Dockerfile is not rebuilt every pass.
func (s *Site) failedRecently(spec *images.Spec, force bool) error {
	if force {
		return nil
	}
	s.mu.Lock()
	f, ok := s.failed[spec.Image]
	s.mu.Unlock()
	if !ok || f.key != spec.Key || time.Since(f.at) >= retryFailedAfter {
		return nil
	}
	return fmt.Errorf("image %s: build %s failed at %s; retried at %s, on a new commit, or with nbh-sync build --force",
		spec.Image, spec.ShortKey(), f.at.Format(time.TimeOnly), f.at.Add(retryFailedAfter).Format(time.TimeOnly))
}

// prune removes old builds of every image beyond build.keep, sparing any
// image a container uses.
func (s *Site) prune(ctx context.Context, cfg *manifest.Config, inUse map[string]bool) error {
	b := s.imageBuilder(cfg)
	var errs []error
	for _, name := range cfg.ImageNames() {
		removed, err := b.Prune(ctx, name, inUse)
		if err != nil {
			errs = append(errs, err)
		}
		if len(removed) > 0 {
			s.log.Info("old builds removed", "image", name, "count", len(removed))
		}
	}
	return errors.Join(errs...)
}
