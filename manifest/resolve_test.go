package manifest

import (
	"io/fs"
	"strings"
	"testing"
)

// fakeSources is a Sources over fixed file sets.
type fakeSources struct {
	config  map[string]bool
	courses map[string]map[string]bool // course → files; a missing course is unknown
	data    map[string]string          // contents of config files (default FROM scratch)
}

func (f fakeSources) ConfigFile(p string) bool { return f.config[p] }
func (f fakeSources) ReadConfigFile(p string) ([]byte, error) {
	if d, ok := f.data[p]; ok {
		return []byte(d), nil
	}
	if f.config[p] {
		return []byte("FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"), nil
	}
	return nil, fs.ErrNotExist
}
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
			"dotnbh":   {Name: "dotnbh"},
			"nbh":      {Name: "nbh"},
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
			// nbhosting's order: .nbhosting/ first, then nbhosting/.
			"dotnbh": {".nbhosting/Dockerfile": true, "nbhosting/Dockerfile": true, CourseDockerfile: true},
			"nbh":    {"nbhosting/Dockerfile": true, CourseDockerfile: true},
			"nodir":  {},
			"both":   {CourseDockerfile: true},
			"empty":  {},
		},
	}
	tests := []struct {
		image   string
		want    ImageSource
		wantErr string
	}{
		{"explicit", ImageSource{Image: "explicit", Kind: FromImagesKey, Dockerfile: "images/other.dockerfile", Dir: "images"}, ""},
		{"argsonly", ImageSource{Image: "argsonly", Kind: FromConfigDir, Dockerfile: "images/argsonly.dockerfile", Dir: "images"}, ""},
		{"withdir", ImageSource{Image: "withdir", Kind: FromCourse, Course: "withdir", Dockerfile: CourseDockerfile, Dir: CourseImageDir}, ""},
		{"dotnbh", ImageSource{Image: "dotnbh", Kind: FromCourse, Course: "dotnbh", Dockerfile: ".nbhosting/Dockerfile", Dir: ".nbhosting"}, ""},
		{"nbh", ImageSource{Image: "nbh", Kind: FromCourse, Course: "nbh", Dockerfile: "nbhosting/Dockerfile", Dir: "nbhosting"}, ""},
		// The course's own Dockerfile comes before images/I.dockerfile.
		{"both", ImageSource{Image: "both", Kind: FromCourse, Course: "both", Dockerfile: CourseDockerfile, Dir: CourseImageDir}, ""},
		{"nodir", ImageSource{Image: "nodir", Kind: FromConfigDir, Dockerfile: "images/nodir.dockerfile", Dir: "images"}, ""},
		{"unfetchd", ImageSource{Image: "unfetchd", Kind: FromCourse, Course: "unfetchd", Assumed: true}, ""},
		{"nothing", ImageSource{}, "image nothing cannot be built: no Dockerfile at images.nothing.dockerfile, images/nothing.dockerfile in the config repo"},
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

// What the config repo gets wrong rejects it; what a course's repo lacks
// is a warning (that image fails, the site goes on).
func TestCheckImagesWhoseFault(t *testing.T) {
	const src = `version: 1
images:
  nbhosting/scipy-notebook:
    dockerfile: images/nbhosting-scipy-notebook.Dockerfile
  loop-a:
    dockerfile: images/a.dockerfile
  loop-b:
    dockerfile: images/b.dockerfile
courses:
  empty:
    repo: /srv/empty
  core:
    repo: /srv/core
    image: nbhosting/scipy-notebook
`
	c, _, err := Parse("site/courses.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.CheckImages(fakeSources{
		config: map[string]bool{"images/nbhosting-scipy-notebook.Dockerfile": true, "images/a.dockerfile": true, "images/b.dockerfile": true},
		data: map[string]string{
			"images/a.dockerfile": "FROM debian:12\nFROM loop-b:latest\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
			"images/b.dockerfile": "FROM localhost/loop-a\nUSER jovyan\n",
		},
		courses: map[string]map[string]bool{"empty": {"README.md": true}},
	})
	var got []string
	for _, p := range ps {
		kind := "E"
		if p.Warning {
			kind = "W"
		}
		got = append(got, kind+" "+p.String())
	}
	want := []string{
		"W site/courses.yaml:10:3: warning: courses.empty: image empty cannot be built: no Dockerfile at images.empty.dockerfile, .nbhosting/Dockerfile in course empty",
		// The lint of the config repo's Dockerfiles rejects it too.
		"E site/images/b.dockerfile:2: USER jovyan: the image must end as root",
		"E site/images/a.dockerfile:2: FROM loop-b:latest: a cycle of base images: loop-a → loop-b → loop-a",
	}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}
