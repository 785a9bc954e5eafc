package images

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// coreSite is nbhosting's layout: core images in the config repo's
// images/ (context: that folder), course images FROM them in the courses'
// .nbhosting/ folders.
func coreSite() *site {
	s := newSite()
	s.config = map[string]file{
		"courses.yaml": {data: "..."},
		"images/nbhosting-scipy-notebook.Dockerfile":   {data: "FROM base:1\nUSER root\nCOPY start-in-dir-as-uid.sh /usr/local/bin\nADD nbhosting-image-root.sh /root/\n"},
		"images/nbhosting-minimal-notebook.Dockerfile": {data: "FROM base:1\nUSER root\nCOPY start-in-dir-as-uid.sh /usr/local/bin\nADD nbhosting-image-root.sh /root/\n"},
		"images/nbhosting-image-root.sh":               {data: "#!/bin/bash\ntrue\n"},
	}
	s.courses["course-a"] = map[string]file{".nbhosting/Dockerfile": {data: "FROM nbhosting/scipy-notebook\nRUN true\n"}, ".nbhosting/nbhosting.yaml": {data: "tracks: []\n"}, "a.ipynb": {data: "{}"}}
	s.courses["course-b"] = map[string]file{"nbhosting/Dockerfile": {data: "FROM localhost/nbhosting/scipy-notebook:latest\nRUN true\n"}}
	s.courses["course-c"] = map[string]file{"docker-image/nbhosting.Dockerfile": {data: "FROM nbhosting/minimal-notebook\nRUN true\n"}}
	return s
}

const coreYAML = `version: 1
images:
  nbhosting/scipy-notebook:
    dockerfile: images/nbhosting-scipy-notebook.Dockerfile
  nbhosting/minimal-notebook:
    dockerfile: images/nbhosting-minimal-notebook.Dockerfile
courses:
  course-a:
    repo: https://example.org/a.git
  course-b:
    repo: https://example.org/b.git
  course-c:
    repo: https://example.org/c.git
`

func specsByName(t *testing.T, s *site, yaml string) (order []string, specs map[string]*Spec, errs map[string]error) {
	t.Helper()
	list, errs := NewSpecs(parseConfig(t, yaml), s.trees(t))
	specs = map[string]*Spec{}
	for _, sp := range list {
		order = append(order, sp.Image)
		specs[sp.Image] = sp
	}
	return order, specs, errs
}

func TestSpecsCoreImages(t *testing.T) {
	s := coreSite()
	order, specs, errs := specsByName(t, s, coreYAML)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if want := "nbhosting/scipy-notebook course-a course-b nbhosting/minimal-notebook course-c"; strings.Join(order, " ") != want {
		t.Errorf("order %v, want %s", order, want)
	}
	scipy := specs["nbhosting/scipy-notebook"]
	if got := strings.Join(scipy.Files(), " "); got != "nbhosting-image-root.sh nbhosting-scipy-notebook.Dockerfile start-in-dir-as-uid.sh" {
		t.Errorf("core context %s", got)
	}
	if a := specs["course-a"]; a.Base != "nbhosting/scipy-notebook" || !a.ProvidesScript || a.Origin.Dockerfile != ".nbhosting/Dockerfile" {
		t.Errorf("course-a: base %q provides %v origin %+v", a.Base, a.ProvidesScript, a.Origin)
	}
	for _, name := range []string{"course-a", "course-b", "course-c"} {
		for _, p := range specs[name].Lint() {
			t.Errorf("%s: lint %s", name, p)
		}
	}

	keys := func(s *site) map[string]string {
		_, specs, errs := specsByName(t, s, coreYAML)
		if len(errs) > 0 {
			t.Fatalf("errors: %v", errs)
		}
		out := map[string]string{}
		for n, sp := range specs {
			out[n] = sp.Key
		}
		return out
	}
	changed := func(a, b map[string]string) []string {
		var out []string
		for n := range a {
			if a[n] != b[n] {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	before := keys(s)
	for _, tc := range []struct {
		name string
		edit func(s *site)
		want string
	}{
		{"notebooks only", func(s *site) { s.courses["course-a"]["a.ipynb"] = file{data: `{"cells":[]}`} }, ""},
		{"scipy core Dockerfile: its courses cascade", func(s *site) {
			s.config["images/nbhosting-scipy-notebook.Dockerfile"] = file{data: s.config["images/nbhosting-scipy-notebook.Dockerfile"].data + "RUN true\n"}
		}, "course-a course-b nbhosting/scipy-notebook"},
		{"a script both core images ADD", func(s *site) { s.config["images/nbhosting-image-root.sh"] = file{data: "#!/bin/bash\necho\n"} },
			"course-a course-b course-c nbhosting/minimal-notebook nbhosting/scipy-notebook"},
		{"one course's folder", func(s *site) { s.courses["course-a"][".nbhosting/extra.txt"] = file{data: "x"} }, "course-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := coreSite()
			tc.edit(s)
			if got := strings.Join(changed(before, keys(s)), " "); got != tc.want {
				t.Errorf("keys changed: %q, want %q", got, tc.want)
			}
		})
	}
}

// A course's trouble is its own image's; a cycle or a broken base holds
// back what is built on it, and only that.
func TestSpecsErrorsStayLocal(t *testing.T) {
	s := coreSite()
	s.courses["course-b"] = map[string]file{"README.md": {data: "no Dockerfile here"}}
	s.courses["course-c"] = map[string]file{"docker-image/nbhosting.Dockerfile": {data: "FROM course-d\n"}}
	s.courses["course-d"] = map[string]file{".nbhosting/Dockerfile": {data: "FROM course-c\n"}}
	s.courses["course-e"] = map[string]file{".nbhosting/Dockerfile": {data: "FROM course-d\n"}}
	yaml := coreYAML + "  course-d:\n    repo: https://example.org/d.git\n  course-e:\n    repo: https://example.org/e.git\n  course-f:\n    repo: https://example.org/f.git\n"
	order, _, errs := specsByName(t, s, yaml)
	if want := "nbhosting/scipy-notebook course-a nbhosting/minimal-notebook"; strings.Join(order, " ") != want {
		t.Errorf("built %v, want %s", order, want)
	}
	for name, want := range map[string]struct {
		msg    string
		inputs bool
	}{
		"course-b": {"no Dockerfile at", true},
		"course-c": {"a cycle of base images: course-c → course-d → course-c", true},
		"course-d": {".nbhosting/Dockerfile:1: a cycle", true},
		"course-e": {"its base image cannot be built", false},
		"course-f": {"repo not fetched yet", false},
	} {
		var be *BuildError
		if !errors.As(errs[name], &be) || be.Stage != StageContext || !strings.Contains(be.Error(), want.msg) {
			t.Errorf("%s: %v, want context error with %q", name, errs[name], want.msg)
			continue
		}
		if be.InputsAtFault() != want.inputs {
			t.Errorf("%s: InputsAtFault %v", name, be.InputsAtFault())
		}
	}
	if len(errs) != 5 {
		t.Errorf("errors %v", errs)
	}
}
