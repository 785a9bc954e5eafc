package manifest

import (
	"errors"
	"os"
	"path"
	"path/filepath"
)

// Report is the outcome of checking a config: what `nbh-sync validate`
// prints, and its --json document.
type Report struct {
	Valid    bool      `json:"valid"`
	File     string    `json:"file"`
	Courses  int       `json:"courses"`
	Images   []string  `json:"images"`
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// NewReport returns the empty report of file, not yet valid. Its lists are
// empty, not nil, so that the JSON document always has them.
func NewReport(file string) *Report {
	return &Report{File: file, Errors: []Problem{}, Warnings: []Problem{}, Images: []string{}}
}

// Add files each problem as an error or a warning; an error makes the
// report invalid.
func (r *Report) Add(problems ...Problem) {
	for _, p := range problems {
		if p.Warning {
			r.Warnings = append(r.Warnings, p)
		} else {
			r.Errors = append(r.Errors, p)
			r.Valid = false
		}
	}
}

// Check parses data, the courses.yaml named file, and checks every image it
// uses against the sources made for it by sources, as the daemon's config
// loader does (CheckImages: the Dockerfile lookup, FROM cycles, the lint of
// the config repo's Dockerfiles), so that validate and the daemon agree.
func Check(file string, data []byte, sources func(*Config) Sources) *Report {
	rep := NewReport(file)
	c, warns, err := Parse(file, data)
	rep.Add(warns...)
	if err != nil {
		var errs Errors
		if !errors.As(err, &errs) {
			errs = Errors{{File: file, Message: err.Error()}}
		}
		rep.Add(errs...)
		return rep
	}
	rep.Courses, rep.Images = len(c.Courses), c.ImageNames()
	rep.Add(c.CheckImages(sources(c))...)
	rep.Valid = len(rep.Errors) == 0
	return rep
}

// DirSources answers Sources from a config directory on disk, as it is
// before a commit. A course in the config repo itself (repo: .) is read
// there too, its path: relative to the directory; other course repos are
// not looked at.
type DirSources struct {
	Dir    string
	Config *Config
}

var _ Sources = DirSources{}

// ConfigFile reports whether p (slash-separated, relative to Dir) is a
// regular file.
func (d DirSources) ConfigFile(p string) bool {
	fi, err := os.Stat(filepath.Join(d.Dir, filepath.FromSlash(p)))
	return err == nil && fi.Mode().IsRegular()
}

// ReadConfigFile reads p (slash-separated, relative to Dir).
func (d DirSources) ReadConfigFile(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Dir, filepath.FromSlash(p)))
}

// CourseFile reports whether p exists in course's root, for a course of
// the config repo itself; known is false for any other course.
func (d DirSources) CourseFile(course, p string) (exists, known bool) {
	co, ok := d.Config.Courses[course]
	if !ok || co.Repo != "." {
		return false, false
	}
	return d.ConfigFile(path.Join(co.Path, p)), true
}
