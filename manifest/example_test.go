package manifest_test

import (
	"errors"
	"fmt"

	"github.com/nbhosting/nbh-sync/manifest"
)

// A courses.yaml is parsed strictly: defaults are merged into every course,
// and a course's image is its own name unless it names a shared one.
func ExampleParse() {
	yaml := []byte(`version: 1
defaults:
  idle: 2h
courses:
  intro:
    repo: https://git.example.org/teaching/intro.git
    idle: 30m
  ds-handbook:
    repo: https://git.example.org/teaching/ds.git
    branch: master
    image: intro
`)
	cfg, warnings, err := manifest.Parse("courses.yaml", yaml)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, name := range cfg.CourseNames() {
		co := cfg.Courses[name]
		fmt.Printf("%s: branch %s, idle %s, image %s\n", name, co.Branch, co.Idle, co.ImageOf())
	}
	fmt.Println("images:", cfg.ImageNames(), "warnings:", len(warnings))
	// Output:
	// ds-handbook: branch master, idle 2h0m0s, image intro
	// intro: branch main, idle 30m0s, image intro
	// images: [intro] warnings: 0
}

// Every problem is reported at once, each with its file, line, column and
// field path; a config with any error is not returned at all.
func ExampleParse_errors() {
	yaml := []byte(`version: 1
courses:
  intro:
    repo: https://git.example.org/teaching/intro.git
    idle: 2 hours
    idel: 30m
`)
	_, _, err := manifest.Parse("courses.yaml", yaml)
	var problems manifest.Errors
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Println(p)
		}
	}
	// Output:
	// courses.yaml:5:5: courses.intro.idle: invalid duration "2 hours" (want e.g. "30m", "2h", "1h30m", "2d")
	// courses.yaml:6:5: courses.intro.idel: unknown field "idel" (did you mean "idle"?)
}
