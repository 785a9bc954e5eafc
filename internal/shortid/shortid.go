// Package shortid shortens the long hex names people read in messages —
// commits, image and container IDs, build keys, registry digests — the way
// git and the Docker CLI show them.
package shortid

import "strings"

// Len is how many hex digits a short name keeps: enough to be unique on
// any one site, and what the image tags of build keys use.
const Len = 12

// Of returns the first Len hex digits of id, without a "sha256:" prefix;
// of an image reference by digest (registry/repo@sha256:…, what Swarm
// services run) the first Len of its digest. A shorter id is returned
// whole, "" stays "".
func Of(id string) string {
	if _, digest, ok := strings.Cut(id, "@"); ok {
		id = digest
	}
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(Len, len(id))]
}

// Images shortens two images compared in a message ("image A is stale
// (current B)"): to Of each when that tells them apart, else — the same
// digest under two repositories, as when a site's builds moved to another
// repository or registry — to the whole references, which then differ.
func Images(a, b string) (string, string) {
	if sa, sb := Of(a), Of(b); sa != sb || a == b {
		return sa, sb
	}
	return a, b
}
