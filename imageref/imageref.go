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

// ListRaced reports whether err is podman failing a whole image list
// because one image was removed while it listed ("locating image with ID
// …: image not known"); the list is worth asking again.
func ListRaced(err error) bool {
	return err != nil && strings.Contains(err.Error(), "locating image") && strings.Contains(err.Error(), "image not known")
}

// ListRetries bounds how often an image list is asked again after
// ListRaced.
const ListRetries = 5
