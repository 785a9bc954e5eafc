// Package imageref writes image references the one way nbh-sync compares
// them, whichever engine listed them.
package imageref

import "strings"

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
