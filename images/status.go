package images

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/imageref"
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
	// Adopt is true for a passed build made before images were
	// site-scoped, of exactly the inputs the site wants: serving it tags
	// it into the site's repository instead of building it again.
	Adopt bool `json:"adopt,omitempty"`
	// Digests are the registry digests of the build's pushes
	// (registry/I@sha256:…), when the site has a registry.
	Digests []string `json:"digests,omitempty"`
}

// ErrNoImage is returned by Current when image has no I:latest yet.
var ErrNoImage = errors.New("no image built yet")

// Builds lists this site's builds of image the engine holds, newest first.
func (b *Builder) Builds(ctx context.Context, image string) ([]Build, error) {
	own, _, err := b.builds(ctx, image, nil)
	return own, err
}

// Listing is the builds of every image the engine held at one list: what
// a plan or a status reads about each of its images for one engine call
// instead of one per image. It holds every site's builds, sorted out per
// Builder as builds does.
type Listing struct {
	byImage map[string][]ImageInfo
}

// List lists the builds of every image in one engine call: the images
// labelled with any image name, the union of what builds lists image by
// image.
func (b *Builder) List(ctx context.Context) (*Listing, error) {
	list, err := b.engine.ImageList(ctx, LabelImage)
	if err != nil {
		return nil, fmt.Errorf("list builds: %w", err)
	}
	l := &Listing{byImage: map[string][]ImageInfo{}}
	for _, im := range list {
		name := im.Labels[LabelImage]
		l.byImage[name] = append(l.byImage[name], im)
	}
	return l, nil
}

// builds lists the builds of image the engine holds, newest first, in one
// call: own, this site's (see owns), and unscoped, passed builds that
// carry no site label, made before images were site-scoped. An unscoped
// build is not the site's until adopted (Build.Adopt), and only when its
// key is the one the site wants: a build key digests every input, so such
// a build is exactly what the site would build. With a listing (List), it
// reads image's builds there and makes no engine call.
func (b *Builder) builds(ctx context.Context, image string, listed *Listing) (own, unscoped []Build, err error) {
	var list []ImageInfo
	if listed != nil {
		list = listed.byImage[image]
	} else if list, err = b.engine.ImageList(ctx, LabelImage+"="+image); err != nil {
		return nil, nil, fmt.Errorf("list builds of %s: %w", image, err)
	}
	repo := b.repo(image)
	for _, im := range newestFirst(list) {
		bd := Build{
			Image: image, Key: im.Labels[LabelBuildKey], Source: im.Labels[LabelSource],
			ImageID: im.ID, Created: im.Created, Tags: im.Tags, Smoke: "pending",
			Latest:  slices.Contains(im.Tags, b.latest(image)),
			Digests: im.Digests,
		}
		switch {
		case b.owns(repo, im):
			if Passed(repo, im.Tags, bd.Key) {
				bd.Smoke = smokePassed
			}
			own = append(own, bd)
		case b.opts.Site != "" && im.Labels[imageref.LabelSite] == "" && Passed(image, im.Tags, bd.Key):
			bd.Smoke, bd.Adopt = smokePassed, true
			unscoped = append(unscoped, bd)
		}
	}
	return own, unscoped, nil
}

// owns reports whether im is one of this site's builds: labelled with the
// site (a build of this Builder, even one left untagged) or tagged in the
// site's repository (an adopted unscoped build). A Builder with no site
// owns the images no site claims.
func (b *Builder) owns(repo string, im ImageInfo) bool {
	if b.opts.Site == "" {
		return im.Labels[imageref.LabelSite] == ""
	}
	return im.Labels[imageref.LabelSite] == b.opts.Site ||
		slices.ContainsFunc(im.Tags, func(t string) bool { return strings.HasPrefix(t, repo+":") })
}

// Current returns the build I:latest points at, or ErrNoImage.
func (b *Builder) Current(ctx context.Context, image string) (Build, error) {
	return b.CurrentIn(ctx, image, nil)
}

// CurrentIn is Current read in a listing (List), with no engine call; a
// nil listing lists image's builds as Current does.
func (b *Builder) CurrentIn(ctx context.Context, image string, listed *Listing) (Build, error) {
	builds, _, err := b.builds(ctx, image, listed)
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
	// Leftovers come from an earlier process (this one removes its own):
	// one look per image in a process's life, not one per pass.
	b.mu.Lock()
	sweep := !b.swept[image]
	b.swept[image] = true
	b.mu.Unlock()
	if sweep {
		b.sweepSmoke(ctx, image)
	}
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
		if err := b.remove(ctx, bd); err != nil {
			if errors.Is(err, ErrInUse) {
				// A container nbh-sync did not count uses it: left for a
				// later prune, not an error of the pass.
				b.log.InfoContext(ctx, "old build still in use", "image", image, "key", bd.Key, "id", bd.ImageID, "err", err)
				continue
			}
			errs = append(errs, err)
			continue
		}
		b.log.InfoContext(ctx, "removed old build", "image", image, "key", bd.Key, "id", bd.ImageID)
		removed = append(removed, bd.ImageID)
	}
	return removed, errors.Join(errs...)
}

// remove removes the site's references to a build: its tags in the site's
// repository (and their pushes' tags), or its ID when it has no tag at all.
// A tag of anyone else's (an unscoped one an older version left) keeps the
// image: it is not the site's to delete.
func (b *Builder) remove(ctx context.Context, bd Build) error {
	repo := b.repo(bd.Image)
	var refs []string
	for _, t := range bd.Tags {
		if strings.HasPrefix(t, repo+":") || (b.opts.Registry != "" && strings.HasPrefix(t, b.opts.Registry+"/"+repo+":")) {
			refs = append(refs, t)
		}
	}
	if len(bd.Tags) == 0 {
		refs = []string{bd.ImageID}
	}
	for _, ref := range refs {
		if err := b.engine.ImageRemove(ctx, ref); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
