package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Build describes one build of an image as the engine holds it.
type Build struct {
	Image   string    `json:"image"`
	Key     string    `json:"key"`
	Source  string    `json:"source"`
	ImageID string    `json:"image_id"`
	Created time.Time `json:"created"`
	Tags    []string  `json:"tags,omitempty"`
	// Smoke is "passed" for a published build, "pending" for one that was
	// interrupted or failed before its smoke test passed.
	Smoke string `json:"smoke"`
	// Latest is true for the build I:latest points at.
	Latest bool `json:"latest"`
	// Digests are the registry digests of the build's pushes
	// (registry/I@sha256:…), when the site has a registry.
	Digests []string `json:"digests,omitempty"`
}

// ErrNoImage is returned by Current when image has no I:latest yet.
var ErrNoImage = errors.New("no image built yet")

// Builds lists the builds of image the engine holds, newest first.
func (b *Builder) Builds(ctx context.Context, image string) ([]Build, error) {
	list, err := b.engine.ImageList(ctx, LabelImage+"="+image)
	if err != nil {
		return nil, fmt.Errorf("list builds of %s: %w", image, err)
	}
	out := make([]Build, 0, len(list))
	for _, im := range newestFirst(list) {
		smoke := "pending"
		if isPassed(image, im) {
			smoke = smokePassed
		}
		out = append(out, Build{
			Image: image, Key: im.Labels[LabelBuildKey], Source: im.Labels[LabelSource],
			ImageID: im.ID, Created: im.Created, Tags: im.Tags, Smoke: smoke,
			Latest:  slices.Contains(im.Tags, image+":"+LatestTag),
			Digests: im.Digests,
		})
	}
	return out, nil
}

// Current returns the build I:latest points at, or ErrNoImage.
func (b *Builder) Current(ctx context.Context, image string) (Build, error) {
	builds, err := b.Builds(ctx, image)
	if err != nil {
		return Build{}, err
	}
	for _, bd := range builds {
		if bd.Latest {
			return bd, nil
		}
	}
	return Build{}, fmt.Errorf("image %s: %w", image, ErrNoImage)
}

// Prune removes the builds of image beyond the newest Options.Keep passed
// ones, and builds whose smoke test never passed, except I:latest and any
// image in inUse (image IDs that containers use). It returns the removed
// image IDs; an image the engine refuses to remove is left for next time.
func (b *Builder) Prune(ctx context.Context, image string, inUse map[string]bool) ([]string, error) {
	unlock, err := b.lock(ctx, image)
	if err != nil {
		return nil, err
	}
	defer unlock()
	builds, err := b.Builds(ctx, image)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	passed := 0
	for _, bd := range builds {
		if bd.Smoke == smokePassed {
			passed++
			if passed <= b.opts.Keep {
				continue
			}
		}
		if bd.Latest || inUse[bd.ImageID] {
			continue
		}
		if err := b.engine.ImageRemove(ctx, bd.ImageID); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		b.log.InfoContext(ctx, "removed old build", "image", image, "key", bd.Key, "id", bd.ImageID)
		removed = append(removed, bd.ImageID)
	}
	return removed, errors.Join(errs...)
}
