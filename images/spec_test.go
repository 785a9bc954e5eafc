package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/manifest"
)

const goodDockerfile = "FROM base:1\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"

const oneCourse = `version: 1
courses:
  c1:
    repo: https://example.org/c1.git
`

// readTar returns the entries of a context: name -> header and content.
func readTar(t *testing.T, s *Spec) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteContext(&buf, nil); err != nil {
		t.Fatalf("WriteContext: %v", err)
	}
	hdrs, data := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hdrs[h.Name], data[h.Name] = h, string(b)
	}
	return hdrs, data
}

func TestSpecFromCourse(t *testing.T) {
	s := newSite()
	s.courses["c1"] = map[string]file{
		"docker-image/nbhosting.Dockerfile": {data: goodDockerfile},
		"docker-image/bin/tool":             {data: "#!/bin/sh\n", exec: true},
		"docker-image/hostlink":             {data: "/etc/shadow", link: true},
		"docker-image/up":                   {data: "../../notebooks/secret.ipynb", link: true},
		"notebooks/a.ipynb":                 {data: "{}"},
	}
	spec, err := NewSpec(parseConfig(t, oneCourse), "c1", s.trees(t))
	if err != nil {
		t.Fatal(err)
	}
	if spec.Origin.Kind != manifest.FromCourse || spec.DockerfileName != "nbhosting.Dockerfile" {
		t.Errorf("origin %+v, dockerfile %q", spec.Origin, spec.DockerfileName)
	}
	if !strings.HasPrefix(spec.Source, "file:///c1@") {
		t.Errorf("source %q", spec.Source)
	}
	hdrs, data := readTar(t, spec)
	want := map[string]struct {
		typ  byte
		mode int64
	}{
		"nbhosting.Dockerfile":   {tar.TypeReg, 0o644},
		"bin/":                   {tar.TypeDir, 0o755},
		"bin/tool":               {tar.TypeReg, 0o755},
		"hostlink":               {tar.TypeSymlink, 0o777},
		"up":                     {tar.TypeSymlink, 0o777},
		"start-in-dir-as-uid.sh": {tar.TypeReg, 0o755},
	}
	if len(hdrs) != len(want) {
		t.Errorf("context has %d entries, want %d: %v", len(hdrs), len(want), spec.Files())
	}
	for name, w := range want {
		h, ok := hdrs[name]
		if !ok {
			t.Errorf("context lacks %s", name)
			continue
		}
		if h.Typeflag != w.typ || h.Mode != w.mode {
			t.Errorf("%s: type %c mode %o, want %c %o", name, h.Typeflag, h.Mode, w.typ, w.mode)
		}
	}
	if hdrs["hostlink"].Linkname != "/etc/shadow" || data["hostlink"] != "" {
		t.Errorf("symlink must stay a symlink: link %q, data %q", hdrs["hostlink"].Linkname, data["hostlink"])
	}
	if data["start-in-dir-as-uid.sh"] != string(StartScript) {
		t.Error("the built-in start script is not in the context")
	}
}

func TestSpecFromConfig(t *testing.T) {
	cfg := parseConfig(t, `version: 1
images:
  ds:
    dockerfile: admin/ds.dockerfile
    build-args: {PY: "3.12"}
courses:
  c1:
    repo: https://example.org/c1.git
    image: ds
  c2:
    repo: https://example.org/c2.git
    image: shared
`)
	s := newSite()
	s.config = map[string]file{
		"courses.yaml":                  {data: "..."},
		"admin/ds.dockerfile":           {data: goodDockerfile},
		"images/shared.dockerfile":      {data: goodDockerfile + "# shared\n"},
		"images/start-in-dir-as-uid.sh": {data: "#!/bin/sh\n# site's own\n"},
		"images/unrelated-notes.md":     {data: "x"},
	}
	s.courses["c1"] = map[string]file{"README.md": {data: "x"}}
	trees := s.trees(t)
	// The context is the Dockerfile's folder, without the other
	// Dockerfiles in it, with the site's start script.
	for _, tc := range []struct {
		image, file, context string
		kind                 manifest.SourceKind
	}{
		{"ds", "admin/ds.dockerfile", "ds.dockerfile start-in-dir-as-uid.sh", manifest.FromImagesKey},
		{"shared", "images/shared.dockerfile", "shared.dockerfile start-in-dir-as-uid.sh unrelated-notes.md", manifest.FromConfigDir},
	} {
		spec, err := NewSpec(cfg, tc.image, trees)
		if err != nil {
			t.Fatalf("%s: %v", tc.image, err)
		}
		if spec.Origin.Kind != tc.kind || spec.File != tc.file || !strings.HasSuffix(spec.Source, ":"+tc.file) {
			t.Errorf("%s: kind %s file %s source %s", tc.image, spec.Origin.Kind, spec.File, spec.Source)
		}
		_, data := readTar(t, spec)
		if strings.Join(spec.Files(), " ") != tc.context || data[spec.DockerfileName] != string(spec.Dockerfile) || data["start-in-dir-as-uid.sh"] != "#!/bin/sh\n# site's own\n" {
			t.Errorf("%s: context %v, want %s", tc.image, spec.Files(), tc.context)
		}
	}
}

// TestKey shows which changes move the build key: only build inputs.
func TestKey(t *testing.T) {
	base := func() *site {
		s := newSite()
		s.roots["c1"] = "intro"
		s.courses["c1"] = map[string]file{
			"intro/docker-image/nbhosting.Dockerfile": {data: goodDockerfile},
			"intro/docker-image/requirements.txt":     {data: "numpy\n"},
			"intro/notebooks/a.ipynb":                 {data: "{}"},
			"other/docker-image/x":                    {data: "other course"},
		}
		return s
	}
	withArgs := strings.Replace(oneCourse, "courses:", "images:\n  c1:\n    build-args: {A: b}\ncourses:", 1)
	key := func(s *site, yaml string) string {
		spec, err := NewSpec(parseConfig(t, strings.Replace(yaml, "c1.git", "c1.git\n    path: intro", 1)), "c1", s.trees(t))
		if err != nil {
			t.Fatal(err)
		}
		return spec.Key
	}
	k0 := key(base(), oneCourse)
	if k0 != key(base(), oneCourse) {
		t.Fatal("key is not deterministic")
	}
	for _, tc := range []struct {
		name   string
		change func(s *site)
		yaml   string
		moves  bool
	}{
		{"notebook only", func(s *site) { s.courses["c1"]["intro/notebooks/a.ipynb"] = file{data: "{\"x\":1}"} }, oneCourse, false},
		{"new notebook", func(s *site) { s.courses["c1"]["intro/notebooks/b.ipynb"] = file{data: "{}"} }, oneCourse, false},
		{"other course's docker-image", func(s *site) { s.courses["c1"]["other/docker-image/x"] = file{data: "y"} }, oneCourse, false},
		{"config repo change", func(s *site) { s.config["README"] = file{data: "y"} }, oneCourse, false},
		{"requirements", func(s *site) { s.courses["c1"]["intro/docker-image/requirements.txt"] = file{data: "pandas\n"} }, oneCourse, true},
		{"new file in docker-image", func(s *site) { s.courses["c1"]["intro/docker-image/new"] = file{data: ""} }, oneCourse, true},
		{"mode", func(s *site) {
			s.courses["c1"]["intro/docker-image/requirements.txt"] = file{data: "numpy\n", exec: true}
		}, oneCourse, true},
		{"Dockerfile", func(s *site) {
			s.courses["c1"]["intro/docker-image/nbhosting.Dockerfile"] = file{data: goodDockerfile + "ENV A=1\n"}
		}, oneCourse, true},
		{"start script override", func(s *site) { s.config["images/start-in-dir-as-uid.sh"] = file{data: "#!/bin/sh\n"} }, oneCourse, true},
		{"build args", func(*site) {}, withArgs, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.change(s)
			if moved := key(s, tc.yaml) != k0; moved != tc.moves {
				t.Errorf("key moved = %v, want %v", moved, tc.moves)
			}
		})
	}
}

func TestSpecErrors(t *testing.T) {
	s := newSite()
	s.courses["c1"] = map[string]file{"README": {data: "x"}}
	if _, err := NewSpec(parseConfig(t, oneCourse), "c1", s.trees(t)); err == nil || !strings.Contains(err.Error(), "cannot be built") {
		t.Errorf("no Dockerfile anywhere: err = %v", err)
	}
	delete(s.courses, "c1") // not fetched yet
	if _, err := NewSpec(parseConfig(t, oneCourse), "c1", s.trees(t)); err == nil || !strings.Contains(err.Error(), "not fetched") {
		t.Errorf("unfetched course: err = %v", err)
	}
}
