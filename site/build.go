package site

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/manifest"
)

// trees gives images the git trees of rev: the config folder at the config
// commit, each course root at the head its mirror holds.
func (s *Site) trees(rev *configrepo.Revision) images.Trees {
	src := rev.Sources
	return images.Trees{
		Config:       src.ConfigTree(),
		ConfigSource: fmt.Sprintf("%s@%s", gitwatch.RedactURL(rev.Location.URL), shortid.Of(rev.Commit.String())),
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
			return tree, "", fmt.Sprintf("%s@%s:%s", gitwatch.RedactURL(repo), shortid.Of(commit.String()), co.Path), nil
		},
	}
}

// imageBuilder returns the image builder, made from the build: section of the
// first config seen (changing it takes a restart). It starts with the
// failures an earlier process kept, so that a status or a plan from the
// command line sees what the daemon saw.
func (s *Site) imageBuilder(cfg *manifest.Config) *images.Builder {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.builder == nil {
		opts := images.OptionsFrom(cfg.Build, s.log)
		opts.Site = SiteName(s.opts.Root)
		if kindOf(cfg).Capabilities.PullsFromRegistry {
			opts.Registry = cfg.Engine.Registry // nodes pull passed builds from there
			opts.RegistryAuth = encodedAuth(cfg.Engine)
		}
		s.builder = images.NewBuilder(s.opts.ImageEngine, opts)
		s.builder.RestoreFailures(s.failures.load())
	}
	return s.builder
}

// specs returns the build specs of every image of rev, in build order,
// and the errors of those whose spec cannot be made. The git trees of a
// revision cache lookups without a lock: a pass, a plan and a status page
// make their specs one at a time.
func (s *Site) specs(rev *configrepo.Revision) ([]*images.Spec, map[string]error) {
	s.specMu.Lock()
	defer s.specMu.Unlock()
	return images.NewSpecs(rev.Config, s.trees(rev))
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
	s.specMu.Lock()
	defer s.specMu.Unlock()
	return images.NewSpec(rev.Config, image, s.trees(rev))
}

// Build makes image serve its current inputs: built when its build key has
// no passed build yet, or always with force; an earlier failure of the same
// inputs is retried at once (an operator asked). The site images it is
// built FROM are ensured first, as a pass would. The log streams to out.
func (s *Site) Build(ctx context.Context, image string, force bool, out io.Writer) (images.Result, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return images.Result{Image: image, Err: err.Error()}, err
	}
	if !slices.Contains(rev.Config.ImageNames(), image) {
		err := fmt.Errorf("no image %s in courses.yaml (images: %v)", image, rev.Config.ImageNames())
		return images.Result{Image: image, Err: err.Error()}, err
	}
	specs, errs := s.specs(rev)
	if err := errs[image]; err != nil {
		s.specFailed(ctx, rev.Config, err)
		return images.Result{Image: image, Err: err.Error()}, err
	}
	byName := map[string]*images.Spec{}
	for _, sp := range specs {
		byName[sp.Image] = sp
	}
	// The bases, deepest first (specs are in build order).
	need := map[string]bool{image: true}
	for i := len(specs) - 1; i >= 0; i-- {
		if need[specs[i].Image] {
			for _, b := range specs[i].Bases {
				need[b] = true
			}
		}
	}
	for _, sp := range specs {
		if sp.Image == image || !need[sp.Image] {
			continue
		}
		if _, err := s.ensure(ctx, sp, images.EnsureOptions{Log: out}); err != nil {
			err = &images.BuildError{Image: image, Key: byName[image].Key, Stage: images.StageContext,
				Err: fmt.Errorf("%w: %s: %w", images.ErrBaseFailed, sp.Image, err)}
			return images.Result{Image: image, Key: byName[image].Key, Err: err.Error()}, err
		}
	}
	return s.ensure(ctx, byName[image], images.EnsureOptions{Force: force, Retry: true, Log: out})
}

func (s *Site) ensure(ctx context.Context, spec *images.Spec, opts images.EnsureOptions) (images.Result, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return images.Result{}, err
	}
	b := s.imageBuilder(cfg)
	before, _ := b.Failure(spec.Image)
	res, err := b.Ensure(ctx, spec, opts)
	if err != nil {
		res.Err = err.Error()
	}
	var held *images.HeldError
	if errors.As(err, &held) {
		return res, err // nothing ran; the failure was reported when it happened
	}
	if after, _ := b.Failure(spec.Image); after != before {
		s.failures.save(ctx, b.Failures())
	}
	s.buildEvents(ctx, cfg, res, err)
	return res, err
}

// specFailed records that image's spec could not be made (no Dockerfile, a
// FROM cycle, a base that cannot be built), once per distinct error.
func (s *Site) specFailed(ctx context.Context, cfg *manifest.Config, err error) {
	var be *images.BuildError
	if !errors.As(err, &be) {
		return
	}
	b := s.imageBuilder(cfg)
	if f, ok := b.Failure(be.Image); ok && f.Error == be.Error() {
		return // the same trouble as last pass: said already
	}
	b.Fail(be)
	s.failures.save(ctx, b.Failures())
	s.buildEvents(ctx, cfg, images.Result{Image: be.Image, Err: be.Error()}, be)
}

// BuildAll ensures every image of the config in force, each after the site
// images it is built FROM: a changed core image is built (and smoke-tested)
// once, then every image on it. The specs are made one after the other
// (git trees are not safe for concurrent use), then the builds run
// concurrently where no FROM orders them, bounded by the builder. One
// image's failure stops only the images built on it; a failed image keeps
// its previous build.
func (s *Site) BuildAll(ctx context.Context, force bool) ([]images.Result, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	specs, specErrs := s.specs(rev)
	names := rev.Config.ImageNames()
	results := make([]images.Result, len(names))
	errs := make([]error, len(names))
	index := map[string]int{}
	for i, name := range names {
		index[name] = i
		if err := specErrs[name]; err != nil {
			results[i], errs[i] = images.Result{Image: name, Err: err.Error()}, err
			s.specFailed(ctx, rev.Config, err)
		}
	}
	done := map[string]chan struct{}{}
	bases := map[string][]string{}
	for _, spec := range specs {
		done[spec.Image] = make(chan struct{})
		bases[spec.Image] = spec.Bases
	}
	// Images whose every course is on hold are not built (nbh-sync build
	// IMAGE still builds one on demand).
	held := heldImages(rev.Config, s.suspensions(rev.Config), bases)
	var wg sync.WaitGroup
	for _, spec := range specs {
		i := index[spec.Image]
		wg.Go(func() {
			defer close(done[spec.Image])
			if held[spec.Image] {
				results[i] = images.Result{Image: spec.Image, Key: spec.Key, Action: images.ActionNone}
				s.log.InfoContext(ctx, "image not built: its courses are suspended", "image", spec.Image)
				return
			}
			for _, b := range spec.Bases {
				<-done[b]
			}
			for _, b := range spec.Bases {
				if err := errs[index[b]]; err != nil {
					err = &images.BuildError{Image: spec.Image, Key: spec.Key, Stage: images.StageContext,
						Err: fmt.Errorf("%w: %s: %w", images.ErrBaseFailed, b, err)}
					results[i], errs[i] = images.Result{Image: spec.Image, Key: spec.Key, Err: err.Error()}, err
					s.specFailed(ctx, rev.Config, err)
					return
				}
			}
			log := s.live.Writer(spec.Image)
			defer log.Close()
			results[i], errs[i] = s.ensure(ctx, spec, images.EnsureOptions{Force: force, Log: log})
		})
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// prune removes old builds of every image beyond build.keep, sparing any
// image a container uses; where nodes pull from a registry, it then
// deletes from it the pushes of the builds no longer kept, and says what
// that reclaims.
func (s *Site) prune(ctx context.Context, cfg *manifest.Config, inUse map[string]bool) ([]images.RegistryPrune, error) {
	b := s.imageBuilder(cfg)
	reg := s.registryOf(cfg)
	var errs []error
	var pruned []images.RegistryPrune
	for _, name := range cfg.ImageNames() {
		removed, err := b.Prune(ctx, name, inUse)
		if err != nil {
			errs = append(errs, err)
		}
		if len(removed) > 0 {
			s.log.InfoContext(ctx, "old builds removed", "image", name, "count", len(removed))
		}
		if reg == nil {
			continue
		}
		rp, err := b.PruneRegistry(ctx, reg, name, inUse)
		if err != nil {
			errs = append(errs, err)
		}
		if len(rp.Deleted) > 0 {
			pruned = append(pruned, rp)
		}
	}
	return pruned, errors.Join(errs...)
}

// registryOf returns the client of the registry cfg's nodes pull from, made
// from the first config seen (as the builder is); nil for an engine that
// runs images where they are built.
func (s *Site) registryOf(cfg *manifest.Config) *images.Registry {
	if !kindOf(cfg).Capabilities.PullsFromRegistry {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.registry == nil {
		var creds func() (string, string, error)
		if load := registryCredentials(cfg.Engine); load != nil {
			creds = func() (string, string, error) {
				c, err := load()
				return c.User, c.Password, err
			}
		}
		s.registry = images.NewRegistry(cfg.Engine.Registry, creds)
	}
	return s.registry
}
