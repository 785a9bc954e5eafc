// Package imageref writes image references the one way nbh-sync compares
// them, whichever engine listed them.
package imageref

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Familiar returns ref the way Docker shows it. podman lists the image
// tagged x:latest as docker.io/library/x:latest when it was made through
// its Docker-compatible API, and as localhost/x:latest when made by its
// own command line; both are x:latest here (and docker.io/org/x:tag is
// org/x:tag).
func Familiar(ref string) string {
	for _, p := range []string{"docker.io/library/", "docker.io/", "localhost/"} {
		if rest, ok := strings.CutPrefix(ref, p); ok {
			return rest
		}
	}
	return ref
}

// ListRaced reports whether err is podman failing a whole image list
// because one image was removed while it listed: its record gone
// ("locating image with ID …: image not known") or, a moment later in the
// removal, its manifest file gone ("locating item named \"manifest\" for
// image with ID …: file does not exist"). The list is worth asking again.
func ListRaced(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "locating image") && strings.Contains(msg, "image not known") ||
		strings.Contains(msg, "locating item named") && strings.Contains(msg, "file does not exist")
}

// ListRetries bounds how often an image list is asked again after
// ListRaced.
const ListRetries = 8

// ListAgain reports whether an image list that failed with err, after try
// earlier retries, is worth asking again, having waited a little longer
// each time (100 ms, 200 ms, …: 3.6 s in all). A burst of removals on a
// busy podman (a prune, a test package cleaning up) outlasts retries made
// back to back: CI saw six in a row fail.
func ListAgain(ctx context.Context, err error, try int) bool {
	if !ListRaced(err) || try >= ListRetries {
		return false
	}
	t := time.NewTimer(time.Duration(try+1) * 100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// BuildRaced reports whether a build failed only because an image went
// from the engine's store while the build used it; nothing of the build
// is kept, so building again is safe and almost always succeeds. podman's
// builder (buildah) lists every image to find a cached step, then reads
// each one's top layer, and fails the whole build with "layer not known"
// when one was removed in between. Docker's classic builder reuses
// another build's untagged intermediate image as a cached step; when that
// build's image is removed meanwhile with its untagged parents (a prune,
// this site's or another's on a shared engine), committing the next step
// fails with "unknown parent image ID". Building again runs the step
// afresh.
func BuildRaced(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "layer not known") || strings.Contains(msg, "unknown parent image ID")
}

// Labels every build of nbh-sync carries: the image's name, its build key
// (a digest of every input), and where its Dockerfile came from
// (repo@commit:path).
const (
	LabelImage    = "org.nbhosting.image"
	LabelBuildKey = "org.nbhosting.build-key"
	LabelSource   = "org.nbhosting.source"
)

// LabelSmokeOf marks a build's smoke-test container; the value is the
// repository of the image it tests (see Repository: the site's namespace
// and the image), so that a site finds the ones an interrupted build of
// its own left, and no other site's.
const LabelSmokeOf = "org.nbhosting.smoke-of"

// LabelSite names the site an object belongs to: the value is the site's
// name (the cleaned absolute path of its data directory). Containers and
// images both carry it.
const LabelSite = "org.nbhosting.site"

// Repository returns the engine repository that holds site's builds of
// image: image under the site's namespace (see Namespace), so that two
// sites on one engine may both build an image named "python" without
// either seeing, running, moving or pruning the other's. With no site (a
// Builder used on its own, in tests) it is image itself.
func Repository(site, image string) string {
	if site == "" {
		return image
	}
	return Namespace(site) + "/" + image
}

// Namespace is the first path component of a site's image repositories:
// "nbh-" and 10 hex digits of the SHA-256 of the site's name. A hash, not
// the name itself, because a site's name is a path that need not be a
// valid reference; 40 bits make two sites on one engine collide with odds
// of one in a trillion. It has no "." or ":", so no engine mistakes it for
// a registry host.
func Namespace(site string) string {
	sum := sha256.Sum256([]byte(site))
	return "nbh-" + hex.EncodeToString(sum[:5])
}
