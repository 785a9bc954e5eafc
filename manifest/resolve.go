package manifest

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Well-known paths of image building.
const (
	// CourseImageDir is the folder of the older course layout
	// (docker-image/nbhosting.Dockerfile), kept working.
	CourseImageDir = "docker-image"
	// CourseDockerfile is the Dockerfile of the older course layout.
	CourseDockerfile = CourseImageDir + "/nbhosting.Dockerfile"
	// ConfigImagesDir holds admin Dockerfiles in the config repo.
	ConfigImagesDir = "images"
	// StartScript is the start script every image must carry in
	// /usr/local/bin; the config repo may override the built-in one with
	// ConfigImagesDir/StartScript.
	StartScript = "start-in-dir-as-uid.sh"
)

// CourseDockerfiles are the places a course repo's Dockerfile is looked up
// (under the course's path:), first hit wins: nbhosting's own order
// (.nbhosting/ then nbhosting/), then the older docker-image/ layout.
var CourseDockerfiles = []string{".nbhosting/Dockerfile", "nbhosting/Dockerfile", CourseDockerfile}

// Sources tells what files exist in the config repo and in course repos, so
// that image resolution can stay pure. Paths are slash-separated.
type Sources interface {
	// ConfigFile reports whether p, relative to the directory of
	// courses.yaml, is a file of the config repo.
	ConfigFile(p string) bool
	// ReadConfigFile returns the content of the file p of the config repo
	// (relative to the directory of courses.yaml).
	ReadConfigFile(p string) ([]byte, error)
	// CourseFile reports whether p, relative to the course's root (its
	// path:), is a file of the course's repo at its branch head. known is
	// false when that repo has not been fetched yet.
	CourseFile(course, p string) (exists, known bool)
}

// SourceKind says where an image's Dockerfile comes from.
type SourceKind string

// The places of the Dockerfile lookup, in lookup order.
const (
	FromImagesKey SourceKind = "images-key"    // images.I.dockerfile in the config repo
	FromCourse    SourceKind = "course"        // one of CourseDockerfiles in course I
	FromConfigDir SourceKind = "config-images" // images/I.dockerfile in the config repo
)

// ImageSource is the resolved origin of one image's Dockerfile.
type ImageSource struct {
	Image string     `json:"image"`
	Kind  SourceKind `json:"kind"`
	// Course is the course whose repo holds the Dockerfile (FromCourse
	// only).
	Course string `json:"course,omitempty"`
	// Dockerfile is relative to the directory of courses.yaml
	// (FromImagesKey, FromConfigDir) or to the course root (FromCourse).
	Dockerfile string `json:"dockerfile"`
	// Dir is the build context: the Dockerfile's folder, relative to the
	// same place. It is "" for a Dockerfile beside courses.yaml, whose
	// context is the Dockerfile alone (else every edit of courses.yaml
	// would rebuild the image).
	Dir string `json:"dir,omitempty"`
	// Assumed is true when FromCourse was chosen without seeing the
	// course's repo (not fetched yet); the build will tell.
	Assumed bool `json:"assumed,omitempty"`
}

// String says where the Dockerfile is, for plan and why.
func (s ImageSource) String() string {
	switch {
	case s.Assumed:
		return fmt.Sprintf("course %s (repo not fetched yet: looked up in %s)", s.Course, strings.Join(CourseDockerfiles, ", "))
	case s.Kind == FromCourse:
		return fmt.Sprintf("course %s: %s", s.Course, s.Dockerfile)
	case s.Kind == FromImagesKey:
		return fmt.Sprintf("config repo: %s (images.%s.dockerfile)", s.Dockerfile, s.Image)
	}
	return "config repo: " + s.Dockerfile
}

// NoDockerfileError says that no place of the lookup has a Dockerfile for
// an image.
type NoDockerfileError struct {
	Image string
	// Course is the course named like the image, whose repo was looked in;
	// "" when there is none.
	Course string
	// Looked lists the places looked in, in order.
	Looked []string
}

func (e *NoDockerfileError) Error() string {
	return fmt.Sprintf("image %s cannot be built: no Dockerfile at %s", e.Image, strings.Join(e.Looked, ", "))
}

// CourseContent reports whether the missing Dockerfile is the course's
// business (its repo has none yet) rather than the config repo's: the
// image is named after a course, so a push to that course can fix it.
func (e *NoDockerfileError) CourseContent() bool { return e.Course != "" }

func contextDir(dockerfile string) string {
	if d := path.Dir(dockerfile); d != "." {
		return d
	}
	return ""
}

// ImageOf returns the image a course runs.
func (c *Course) ImageOf() string {
	if c.Image != "" {
		return c.Image
	}
	return c.Name
}

// ImageNames returns, sorted, every image of the site: those a course uses
// and those declared under images:.
func (c *Config) ImageNames() []string {
	var names []string
	for _, co := range c.Courses {
		names = append(names, co.ImageOf())
	}
	for name := range c.Images {
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// CourseNames returns the course names, sorted.
func (c *Config) CourseNames() []string {
	names := make([]string, 0, len(c.Courses))
	for name := range c.Courses {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Errors about a course name callers branch on (with errors.Is). They are
// the config's facts, not an engine's, so the front door can tell a student
// why no server starts without importing what starts one.
var (
	// ErrUnknownCourse: the course is not in courses.yaml.
	ErrUnknownCourse = errors.New("unknown course")
	// ErrArchived: the course is archived; it gets no new containers.
	ErrArchived = errors.New("course is archived")
)

// Course returns the course named name, with its Name set, or an
// ErrUnknownCourse error.
func (c *Config) Course(name string) (Course, error) {
	co, ok := c.Courses[name]
	if !ok {
		return Course{}, fmt.Errorf("course %q: %w (known: %s)", name, ErrUnknownCourse, strings.Join(c.CourseNames(), ", "))
	}
	co.Name = name
	return co, nil
}

// CoursesUsing returns, sorted, the courses whose image is name.
func (c *Config) CoursesUsing(name string) []string {
	var names []string
	for _, co := range c.Courses {
		if co.ImageOf() == name {
			names = append(names, co.Name)
		}
	}
	slices.Sort(names)
	return names
}

// ResolveImage finds the Dockerfile of image name, first hit wins:
// images.I.dockerfile (config repo), then the course named I's
// .nbhosting/Dockerfile, nbhosting/Dockerfile, docker-image/nbhosting.Dockerfile,
// then images/I.dockerfile (config repo). It fails with a
// *NoDockerfileError when no place has one.
func (c *Config) ResolveImage(name string, src Sources) (ImageSource, error) {
	if img, ok := c.Images[name]; ok && img.Dockerfile != "" {
		p := path.Clean(img.Dockerfile)
		if !src.ConfigFile(p) {
			return ImageSource{}, fmt.Errorf("image %s: dockerfile %s is not in the config repo", name, p)
		}
		return ImageSource{Image: name, Kind: FromImagesKey, Dockerfile: p, Dir: contextDir(p)}, nil
	}
	e := &NoDockerfileError{Image: name, Looked: []string{"images." + name + ".dockerfile"}}
	unknown := false
	if _, ok := c.Courses[name]; ok {
		e.Course = name
		for _, p := range CourseDockerfiles {
			exists, known := src.CourseFile(name, p)
			if exists {
				return ImageSource{Image: name, Kind: FromCourse, Course: name, Dockerfile: p, Dir: contextDir(p)}, nil
			}
			unknown = unknown || !known
			e.Looked = append(e.Looked, fmt.Sprintf("%s in course %s", p, name))
		}
	}
	p := path.Join(ConfigImagesDir, name+".dockerfile")
	if src.ConfigFile(p) {
		return ImageSource{Image: name, Kind: FromConfigDir, Dockerfile: p, Dir: contextDir(p)}, nil
	}
	if unknown {
		return ImageSource{Image: name, Kind: FromCourse, Course: name, Assumed: true}, nil
	}
	e.Looked = append(e.Looked, p+" in the config repo")
	return ImageSource{}, e
}
