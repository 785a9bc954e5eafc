package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/manifest"
)

// The site keeps a few small records in its data directory's state. Each is
// a type of its own here, holding its file and the mutex that guards it, so
// that what a lock serializes is said by where it is. A record that cannot
// be written is logged, not returned: the pass that wrote it has done its
// work either way, and the next one writes it again.

// failuresRecord is the build failures file: the image builder's failures,
// kept so that a status or a plan from the command line sees what the
// daemon saw, and a restart does not retry a failed build at once.
type failuresRecord struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // serializes writes
}

// load returns the recorded failures; none when there is no readable record.
func (r *failuresRecord) load() []images.Failure {
	b, err := os.ReadFile(r.path)
	if err != nil {
		return nil
	}
	var fs []images.Failure
	if json.Unmarshal(b, &fs) != nil {
		return nil
	}
	return fs
}

// save replaces the record with fs.
func (r *failuresRecord) save(ctx context.Context, fs []images.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := atomicfile.WriteJSON(r.path, fs); err != nil {
		r.log.WarnContext(ctx, "build failures not recorded", "err", err)
	}
}

// knownRecord records every course this site has had in a config revision
// it applied. The container pass adopts unlabelled nbhosting containers
// (COURSE-x-STUDENT, no labels) only of these courses and of those in
// courses.yaml now, so that removing a course from courses.yaml still
// retires its adopted containers, while containers named like that of a
// course the site never had — another tool's — are never touched.
type knownRecord struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // serializes read-and-grow
}

// knownCourses is the known-courses file.
type knownCourses struct {
	Courses []string `json:"courses"`
}

// read returns the recorded courses; none when no record exists yet.
func (r *knownRecord) read() (map[string]bool, error) {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	var k knownCourses
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.path, err)
	}
	out := make(map[string]bool, len(k.Courses))
	for _, c := range k.Courses {
		out[c] = true
	}
	return out, nil
}

// update returns the courses this site has had, with those of cfg added;
// with record, the file is written (0600) when it grew. A record that
// cannot be read adopts nothing beyond cfg's courses — the safe side:
// containers of removed courses are then left alone, never those of others
// taken.
func (r *knownRecord) update(ctx context.Context, cfg *manifest.Config, record bool) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	had, err := r.read()
	if err != nil {
		r.log.WarnContext(ctx, "courses of earlier revisions unknown: adopting only those of courses.yaml", "err", err)
		had = map[string]bool{}
		record = false // keep the broken file for a human to look at
	}
	grew := false
	for name := range cfg.Courses {
		if !had[name] {
			had[name], grew = true, true
		}
	}
	if grew && record {
		rec := knownCourses{Courses: slices.Sorted(maps.Keys(had))}
		if err := atomicfile.WriteJSON(r.path, rec); err != nil {
			r.log.WarnContext(ctx, "known courses not recorded", "err", err)
		}
	}
	return had
}

// holdsRecord is the file of the course holds made at run time (see
// holds.go).
type holdsRecord struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // serializes read-change-write; reads need none (the file is replaced whole)
}

// read returns the holds; none when the file is missing or unreadable (a
// broken file holds nothing back, and says so in the log).
func (r *holdsRecord) read() holdsFile {
	h := holdsFile{Courses: map[string]runtimeHold{}}
	b, err := os.ReadFile(r.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("course holds unreadable: none applied", "err", err)
		}
		return h
	}
	if err := json.Unmarshal(b, &h); err != nil {
		r.log.Warn("course holds unreadable: none applied", "err", err)
	}
	if h.Courses == nil {
		h.Courses = map[string]runtimeHold{}
	}
	return h
}

// update reads the holds, lets change edit them, and writes them back when
// change says so, all under the record's lock so that two changes at once
// do not lose one. An error of change is returned as is, with nothing
// written.
func (r *holdsRecord) update(change func(h holdsFile) (write bool, err error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.read()
	write, err := change(h)
	if err != nil || !write {
		return err
	}
	return atomicfile.WriteJSON(r.path, h)
}

// lastPassRecord is the report of the last container pass: kept in memory
// by the process that ran it, and in a file for a status from another
// process (or after a restart).
type lastPassRecord struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // guards rep and serializes writes
	rep  *PassReport
}

// set makes rep the last pass, and records it.
func (r *lastPassRecord) set(ctx context.Context, rep PassReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep = &rep
	if err := atomicfile.WriteJSON(r.path, rep); err != nil {
		r.log.WarnContext(ctx, "last pass not recorded", "err", err)
	}
}

// get returns the last pass this process ran, else the recorded one, else
// nil.
func (r *lastPassRecord) get() *PassReport {
	r.mu.Lock()
	rep := r.rep
	r.mu.Unlock()
	if rep != nil {
		return rep
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return nil
	}
	var file PassReport
	if json.Unmarshal(b, &file) != nil {
		return nil
	}
	return &file
}
