package manifest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/manifest"
)

func TestCheckDir(t *testing.T) {
	const dockerfile = "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"
	tests := []struct {
		name       string
		files      map[string]string // the config directory; courses.yaml is checked
		valid      bool
		images     []string
		wantErrors []string // substrings, one per error
	}{
		{
			name: "course in the config repo, its Dockerfile on disk",
			files: map[string]string{
				"courses.yaml": "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n",
				"intro/docker-image/nbhosting.Dockerfile": dockerfile,
			},
			valid: true, images: []string{"intro"},
		},
		{
			name: "admin image from images/",
			files: map[string]string{
				"courses.yaml":           "version: 1\ncourses:\n  intro:\n    repo: .\n    image: base\n",
				"images/base.dockerfile": dockerfile,
			},
			valid: true, images: []string{"base"},
		},
		{
			name:       "an admin Dockerfile named but missing",
			files:      map[string]string{"courses.yaml": "version: 1\nimages:\n  base:\n    dockerfile: images/base.dockerfile\ncourses:\n  intro:\n    repo: .\n    image: base\n"},
			wantErrors: []string{"images.base"},
			images:     []string{"base"},
		},
		{
			name:   "a course elsewhere is not looked at",
			files:  map[string]string{"courses.yaml": "version: 1\ncourses:\n  intro:\n    repo: https://git.example.org/intro.git\n"},
			valid:  true,
			images: []string{"intro"},
		},
		{
			name:       "does not parse",
			files:      map[string]string{"courses.yaml": "version: 1\ncourses:\n  intro:\n    repo: .\n    idle: soon\n"},
			wantErrors: []string{`courses.intro.idle: invalid duration "soon"`},
			images:     []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep := manifest.Check("courses.yaml", []byte(tt.files["courses.yaml"]), func(c *manifest.Config) manifest.Sources {
				return manifest.DirSources{Dir: dir, Config: c}
			})
			if rep.Valid != tt.valid || strings.Join(rep.Images, ",") != strings.Join(tt.images, ",") {
				t.Errorf("valid %v, images %v; want %v, %v (errors %v)", rep.Valid, rep.Images, tt.valid, tt.images, rep.Errors)
			}
			if len(rep.Errors) != len(tt.wantErrors) {
				t.Fatalf("errors %v, want %d", rep.Errors, len(tt.wantErrors))
			}
			for i, want := range tt.wantErrors {
				if got := rep.Errors[i].String(); !strings.Contains(got, want) {
					t.Errorf("error %d: %q, want it to contain %q", i, got, want)
				}
			}
		})
	}
}

func TestReportAdd(t *testing.T) {
	rep := manifest.NewReport("courses.yaml")
	rep.Valid = true
	rep.Add(manifest.Problem{Message: "moving tag", Warning: true})
	if !rep.Valid || len(rep.Warnings) != 1 || len(rep.Errors) != 0 {
		t.Fatalf("after a warning: %+v", rep)
	}
	rep.Add(manifest.Problem{Message: "no start script"})
	if rep.Valid || len(rep.Errors) != 1 {
		t.Fatalf("after an error: %+v", rep)
	}
}
