package rootdir

import "path/filepath"

// Holds is the record of the courses put on hold at run time (nbh-sync
// suspend), with who did it, when and why, written by site: a hold
// outlives the daemon that was told it.
func Holds(root string) string { return filepath.Join(State(root), "holds.json") }

// Trash is where `nbh-sync remove --workspace` moves a student's work
// instead of deleting it: TrashEntry below it, pruned by site once older
// than the retention period.
func Trash(root string) string { return filepath.Join(State(root), "trash") }

// TrashEntry is one workspace moved to the trash, named by the time it was
// moved (UTC, sortable, as site writes it): the prune reads the age from
// the name, not from file times, which a rename keeps.
func TrashEntry(root, course, student, stamp string) string {
	return filepath.Join(Trash(root), course, student, stamp)
}

// Usage is the folder of the usage store (package usage): per-day,
// per-course figures and the student-id dictionary they use.
func Usage(root string) string { return filepath.Join(State(root), "usage") }
