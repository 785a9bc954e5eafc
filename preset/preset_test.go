package preset

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree writes files (path → content; a content starting with "-> " makes a
// symlink to the rest) under a new course directory and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasSuffix(p, "/") {
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNbhosting(t *testing.T) {
	const ro = ":ro"
	tests := []struct {
		name  string
		files map[string]string
		// binds, with the course directory written as C
		binds      []string
		pythonpath bool
		notes      []string
	}{
		{
			name:  "an empty course gets NBAUTOEVAL_LOG only",
			files: map[string]string{"README.md": "x"},
		},
		{
			name:       "defaults: modules, data and media",
			files:      map[string]string{"modules/m.py": "X = 1", "data/d.csv": "1", "media/i.png": "p", "other/o": "o"},
			binds:      []string{"C/modules:/home/jovyan/modules" + ro, "C/data:/home/jovyan/static/data" + ro, "C/media:/home/jovyan/static/media" + ro},
			pythonpath: true,
		},
		{
			name:  "an empty static-mappings list means the defaults (sample-course)",
			files: map[string]string{".nbhosting/nbhosting.yaml": "tracks: []\nstatic-mappings: []\n", "media/i.png": "p"},
			binds: []string{"C/media:/home/jovyan/static/media" + ro},
		},
		{
			name: "the top-levels of the mappings' destinations, from both yaml files",
			files: map[string]string{
				".nbhosting/nbhosting.yaml": "static-mappings:\n  - {source: pics, destination: media/pics}\n  - {source: x, destination: media/x}\n",
				"nbhosting/nbhosting.yaml":  "static-mappings:\n  - {source: d, destination: corpus}\n",
				"media/pics/a":              "a", "corpus/c": "c", "data/d": "not mapped",
			},
			binds: []string{"C/corpus:/home/jovyan/static/corpus" + ro, "C/media:/home/jovyan/static/media" + ro},
		},
		{
			name:  "destinations outside the course are left out, with a note",
			files: map[string]string{".nbhosting/nbhosting.yaml": "static-mappings:\n  - {source: a, destination: ../etc}\n  - {source: b, destination: /etc}\n  - {source: c, destination: data}\n", "data/d": "d"},
			binds: []string{"C/data:/home/jovyan/static/data" + ro},
			notes: []string{`"../etc": destination must be`, `"/etc": destination must be`},
		},
		{
			name:  "a broken yaml is a note, the defaults apply",
			files: map[string]string{".nbhosting/nbhosting.yaml": "static-mappings: {oops\n", "data/d": "d"},
			binds: []string{"C/data:/home/jovyan/static/data" + ro},
			notes: []string{".nbhosting/nbhosting.yaml:"},
		},
		{
			name:  "symlinks never bring host paths in",
			files: map[string]string{"modules": "-> /etc", "data": "-> /", ".nbhosting/jupyter/custom/custom.css": "-> /etc/shadow", ".nbhosting/jupyter/ok.json": "{}"},
			binds: []string{"C/.nbhosting/jupyter/ok.json:/home/jovyan/.jupyter/ok.json" + ro},
			notes: []string{"modules: not mounted, modules is a symlink", "data: not mounted, data is a symlink", "custom.css is a symlink"},
		},
		{
			name:  "a symlinked .nbhosting is refused as a whole",
			files: map[string]string{"elsewhere/jupyter/a.json": "{}", ".nbhosting": "-> elsewhere"},
			notes: []string{".nbhosting is a symlink"},
		},
		{
			name: "every file of .nbhosting/jupyter, one mount each; the older names unless jupyter/ has them",
			files: map[string]string{
				".nbhosting/jupyter/custom/custom.css":                "css",
				".nbhosting/jupyter/jupyter_server_config.json":       "{}",
				".nbhosting/jupyter/nbconfig/notebook.json":           "{}",
				".nbhosting/nbconfig/notebook.json":                   "older, hidden",
				".nbhosting/labconfig/default_setting_overrides.json": "{}",
			},
			binds: []string{
				"C/.nbhosting/jupyter/custom/custom.css:/home/jovyan/.jupyter/custom/custom.css" + ro,
				"C/.nbhosting/jupyter/jupyter_server_config.json:/home/jovyan/.jupyter/jupyter_server_config.json" + ro,
				"C/.nbhosting/labconfig/default_setting_overrides.json:/home/jovyan/.jupyter/labconfig/default_setting_overrides.json" + ro,
				"C/.nbhosting/jupyter/nbconfig/notebook.json:/home/jovyan/.jupyter/nbconfig/notebook.json" + ro,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tree(t, tt.files)
			a, err := Nbhosting(dir)
			if err != nil {
				t.Fatal(err)
			}
			real, _ := filepath.EvalSymlinks(dir)
			var binds []string
			for _, b := range a.Binds {
				binds = append(binds, strings.Replace(b, real, "C", 1))
			}
			if !slices.Equal(binds, tt.binds) {
				t.Errorf("binds:\n  %s\nwant:\n  %s", strings.Join(binds, "\n  "), strings.Join(tt.binds, "\n  "))
			}
			if a.Env["NBAUTOEVAL_LOG"] != "/home/jovyan/work/.nbautoeval" {
				t.Errorf("NBAUTOEVAL_LOG = %q", a.Env["NBAUTOEVAL_LOG"])
			}
			if got := a.Env["PYTHONPATH"] == "/home/jovyan/modules"; got != tt.pythonpath {
				t.Errorf("PYTHONPATH = %q", a.Env["PYTHONPATH"])
			}
			for _, n := range tt.notes {
				if !slices.ContainsFunc(a.Notes, func(s string) bool { return strings.Contains(s, n) }) {
					t.Errorf("no note saying %q in %q", n, a.Notes)
				}
			}
			if len(tt.notes) == 0 && len(a.Notes) > 0 {
				t.Errorf("notes %q, want none", a.Notes)
			}
		})
	}
}

func TestNbhostingMissingCourse(t *testing.T) {
	if _, err := Nbhosting(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("a missing course tree gave no error")
	}
}
