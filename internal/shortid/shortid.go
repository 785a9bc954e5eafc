// Package shortid shortens the long hex names people read in messages —
// commits, image and container IDs, build keys — the way git and the
// Docker CLI show them.
package shortid

import "strings"

// Len is how many hex digits a short name keeps: enough to be unique on
// any one site, and what the image tags of build keys use.
const Len = 12

// Of returns the first Len characters of id, without a "sha256:" prefix;
// a shorter id is returned whole, "" stays "".
func Of(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(Len, len(id))]
}
