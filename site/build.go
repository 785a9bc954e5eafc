package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

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
				return nil, "", "", nil // not fetched (yet): the build will say so
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

// Builder returns the image builder, made from the build: section of the
// first config seen (changing it takes a restart).
func (s *Site) imageBuilder(cfg *manifest.Config) *images.Builder {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.builder == nil {
		s.builder = images.NewBuilder(s.opts.ImageEngine, images.OptionsFrom(cfg.Build, s.log))
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
	rev, err := s.revision(ctx)
	if err != nil {
		return images.Result{}, err
	}
	spec, err := s.Spec(ctx, image)
	if err != nil {
		return images.Result{Image: image}, err
	}
	res, err := s.imageBuilder(rev.Config).Ensure(ctx, spec, images.EnsureOptions{Force: force, Log: out})
	s.buildEvents(ctx, res, err)
	return res, err
}

// BuildAll ensures every image of the config in force, concurrently (the
// builder bounds how many run at once). One image's failure does not stop
// the others; the previous build of a failed image keeps serving.
func (s *Site) BuildAll(ctx context.Context, force bool) ([]images.Result, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	names := rev.Config.ImageNames()
	results := make([]images.Result, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			results[i], errs[i] = s.Build(ctx, name, force, nil)
			if results[i].Image == "" {
				results[i].Image = name
			}
			if errs[i] != nil {
				results[i].Err = errs[i].Error()
			}
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
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
