package manifest

import (
	"fmt"
	"path"
	"slices"
)

// Well-known paths of the Dockerfile lookup (docs/design.md, "The build key").
const (
	// CourseImageDir is the folder of a course (under its path:) that holds
	// its image definition; all of it is the build context.
	CourseImageDir = "docker-image"
	// CourseDockerfile is the Dockerfile inside CourseImageDir.
	CourseDockerfile = CourseImageDir + "/nbhosting.Dockerfile"
	// ConfigImagesDir holds admin Dockerfiles in the config repo.
	ConfigImagesDir = "images"
	// StartScript is the start script every image must carry in
	// /usr/local/bin; the config repo may override the built-in one with
	// ConfigImagesDir/StartScript.
	StartScript = "start-in-dir-as-uid.sh"
)

// Sources tells what files exist in the config repo and in course repos, so
// that image resolution can stay pure. Paths are slash-separated.
type Sources interface {
	// ConfigFile reports whether p, relative to the directory of
	// courses.yaml, is a file of the config repo.
	ConfigFile(p string) bool
	// CourseFile reports whether p, relative to the course's root (its
	// path:), is a file of the course's repo at its branch head. known is
	// false when that repo has not been fetched yet.
	CourseFile(course, p string) (exists, known bool)
}

// SourceKind says where an image's Dockerfile comes from.
type SourceKind string

// The places a Dockerfile is looked up, in order (docs/design.md, "The build key").
const (
	FromImagesKey SourceKind = "images-key"    // images.I.dockerfile in the config repo
	FromCourse    SourceKind = "course"        // docker-image/nbhosting.Dockerfile of course I
	FromConfigDir SourceKind = "config-images" // images/I.dockerfile in the config repo
)

// ImageSource is the resolved origin of one image's Dockerfile.
type ImageSource struct {
	Image string     `json:"image"`
	Kind  SourceKind `json:"kind"`
	// Course is the course whose docker-image/ folder is the build context
	// (FromCourse only).
	Course string `json:"course,omitempty"`
	// Dockerfile is relative to the directory of courses.yaml
	// (FromImagesKey, FromConfigDir) or to the course root (FromCourse).
	Dockerfile string `json:"dockerfile"`
	// Assumed is true when FromCourse was chosen without seeing the
	// course's repo (not fetched yet); the build will tell.
	Assumed bool `json:"assumed,omitempty"`
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

// ResolveImage finds the Dockerfile of image name by the lookup order of
// docs/design.md ("The build key"). It fails when no place has one.
func (c *Config) ResolveImage(name string, src Sources) (ImageSource, error) {
	if img, ok := c.Images[name]; ok && img.Dockerfile != "" {
		p := path.Clean(img.Dockerfile)
		if !src.ConfigFile(p) {
			return ImageSource{}, fmt.Errorf("image %s: dockerfile %s is not in the config repo", name, p)
		}
		return ImageSource{Image: name, Kind: FromImagesKey, Dockerfile: p}, nil
	}
	unknown := false
	if _, ok := c.Courses[name]; ok {
		exists, known := src.CourseFile(name, CourseDockerfile)
		if exists {
			return ImageSource{Image: name, Kind: FromCourse, Course: name, Dockerfile: CourseDockerfile}, nil
		}
		unknown = !known
	}
	p := path.Join(ConfigImagesDir, name+".dockerfile")
	if src.ConfigFile(p) {
		return ImageSource{Image: name, Kind: FromConfigDir, Dockerfile: p}, nil
	}
	if unknown {
		return ImageSource{Image: name, Kind: FromCourse, Course: name, Dockerfile: CourseDockerfile, Assumed: true}, nil
	}
	where := fmt.Sprintf("no images.%s.dockerfile, no %s in the config repo", name, p)
	if _, ok := c.Courses[name]; ok {
		where += fmt.Sprintf(", no %s in course %s", CourseDockerfile, name)
	} else {
		where += fmt.Sprintf(", and no course named %s with a %s", name, CourseDockerfile)
	}
	return ImageSource{}, fmt.Errorf("image %s cannot be built: %s", name, where)
}
