package manifest

import (
	"strings"
	"testing"
)

// fakeSources is a Sources over fixed file sets.
type fakeSources struct {
	config  map[string]bool
	courses map[string]map[string]bool // course → files; a missing course is unknown
}

func (f fakeSources) ConfigFile(p string) bool { return f.config[p] }
func (f fakeSources) CourseFile(course, p string) (bool, bool) {
	files, known := f.courses[course]
	return files[p], known
}

var _ Sources = fakeSources{}

func TestResolveImage(t *testing.T) {
	c := &Config{
		Images: map[string]Image{
			"explicit": {Dockerfile: "images/other.dockerfile"},
			"argsonly": {BuildArgs: map[string]string{"A": "1"}},
		},
		Courses: map[string]Course{
			"withdir":  {Name: "withdir"},
			"nodir":    {Name: "nodir"},
			"unfetchd": {Name: "unfetchd"},
			"both":     {Name: "both"},
		},
	}
	src := fakeSources{
		config: map[string]bool{
			"images/other.dockerfile":    true,
			"images/argsonly.dockerfile": true,
			"images/nodir.dockerfile":    true,
			"images/both.dockerfile":     true,
		},
		courses: map[string]map[string]bool{
			"withdir": {CourseDockerfile: true},
			"nodir":   {},
			"both":    {CourseDockerfile: true},
			"empty":   {},
		},
	}
	tests := []struct {
		image   string
		want    ImageSource
		wantErr string
	}{
		{"explicit", ImageSource{Image: "explicit", Kind: FromImagesKey, Dockerfile: "images/other.dockerfile"}, ""},
		{"argsonly", ImageSource{Image: "argsonly", Kind: FromConfigDir, Dockerfile: "images/argsonly.dockerfile"}, ""},
		{"withdir", ImageSource{Image: "withdir", Kind: FromCourse, Course: "withdir", Dockerfile: CourseDockerfile}, ""},
		// The course's own docker-image/ comes before images/I.dockerfile.
		{"both", ImageSource{Image: "both", Kind: FromCourse, Course: "both", Dockerfile: CourseDockerfile}, ""},
		{"nodir", ImageSource{Image: "nodir", Kind: FromConfigDir, Dockerfile: "images/nodir.dockerfile"}, ""},
		{"unfetchd", ImageSource{Image: "unfetchd", Kind: FromCourse, Course: "unfetchd", Dockerfile: CourseDockerfile, Assumed: true}, ""},
		{"nothing", ImageSource{}, "image nothing cannot be built: no images.nothing.dockerfile, no images/nothing.dockerfile in the config repo, and no course named nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			got, err := c.ResolveImage(tt.image, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCheckImagesPositions(t *testing.T) {
	const src = `version: 1
courses:
  a:
    repo: /srv/a
    image: missing
`
	c, _, err := Parse("courses.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.CheckImages(fakeSources{courses: map[string]map[string]bool{"a": {}}})
	if len(ps) != 1 || ps[0].Warning {
		t.Fatalf("problems = %v", ps)
	}
	if got := ps[0].String(); !strings.HasPrefix(got, "courses.yaml:3:3: courses.a: image missing cannot be built") {
		t.Errorf("got %q", got)
	}
}
