// Package workspace keeps each student's own editable copy of a course — a
// workspace — in line with the course without ever losing a byte of the
// student's.
//
// A workspace is a folder (ROOT/students/STUDENT/COURSE, the student's work
// folder) plus private state kept outside it, where the student cannot see
// or delete it:
//
//   - a Store per course (ROOT/state/workspaces/COURSE, say) holds the
//     content of every course file a workspace was ever made from or merged
//     to, as blobs named by their sha256 and shared by every student of the
//     course, and one manifest per course commit (a Snapshot);
//   - each workspace's state folder (…/COURSE/students/STUDENT) holds its
//     base — the course commit it is at and, for every course file it
//     tracks, the sha256 of the course's content it was last given — its
//     backups, and a lock.
//
// Update merges three versions of each file: the base, the student's (the
// folder) and the course's (a new Snapshot). A file the course did not change
// is never looked at; a file the student did not change takes the course's
// version; a notebook changed on both sides is merged cell by cell; anything
// else changed on both sides keeps the student's version in place and gets
// the course's beside it, as "NAME (course YYYY-MM-DD).EXT". The rules, in
// full, are on Workspace.Update and in docs/workspaces.md.
//
// Every write into the folder goes to a temporary file in the same folder,
// then is renamed over its target, so a crash leaves each file old or new;
// the base is written last, so a crash never makes a student's change look
// like the course's, and running Update again finishes the job. Before an
// Update changes anything, the files it will change are kept in a backup
// (hard links: the student's file is replaced by a rename, so its old inode
// stays intact), which Undo restores and Prune removes when old.
//
// Nothing here runs Docker or git: the course is a folder on disk (the
// course's work tree, checked out by gitwatch) named by its commit.
package workspace
