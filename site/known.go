package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// knownCourses records every course this site has had in a config
// revision it applied (in rootdir.KnownCourses). The container pass adopts
// unlabelled nbhosting containers (COURSE-x-STUDENT, no labels) only of
// these courses and of those in courses.yaml now, so that removing a course
// from courses.yaml
// still retires its adopted containers, while containers named like that
// of a course the site never had — another tool's — are never touched.
type knownCourses struct {
	Courses []string `json:"courses"`
}

// readKnownCourses returns the courses recorded under root; none when no
// record exists yet.
func readKnownCourses(root string) (map[string]bool, error) {
	b, err := os.ReadFile(rootdir.KnownCourses(root))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	var k knownCourses
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("read %s: %w", rootdir.KnownCourses(root), err)
	}
	out := make(map[string]bool, len(k.Courses))
	for _, c := range k.Courses {
		out[c] = true
	}
	return out, nil
}

// knownCourses returns the courses this site has had, with those of cfg
// added to the record (written, 0600, when it grew). A record that cannot
// be read adopts nothing beyond cfg's courses — the safe side: containers
// of removed courses are then left alone, never those of others taken.
func (s *Site) knownCourses(ctx context.Context, cfg *manifest.Config, record bool) map[string]bool {
	s.knownMu.Lock()
	defer s.knownMu.Unlock()
	had, err := readKnownCourses(s.opts.Root)
	if err != nil {
		s.log.WarnContext(ctx, "courses of earlier revisions unknown: adopting only those of courses.yaml", "err", err)
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
		if err := atomicfile.WriteJSON(rootdir.KnownCourses(s.opts.Root), rec); err != nil {
			s.log.WarnContext(ctx, "known courses not recorded", "err", err)
		}
	}
	return had
}
