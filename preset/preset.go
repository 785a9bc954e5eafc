// Package preset works out what a container preset adds to a student's
// container from the course's checked-out tree. The one preset today,
// "nbhosting", gives a course's notebooks the environment they have under
// nbhosting:
//
//   - the course's modules/ read-only at /home/jovyan/modules, on PYTHONPATH;
//   - each static top-level directory named by the destinations of
//     static-mappings in .nbhosting/nbhosting.yaml (or nbhosting/nbhosting.yaml;
//     both are read, as nbhosting merges them; by default data and media)
//     read-only at /home/jovyan/static/TOP;
//   - NBAUTOEVAL_LOG=/home/jovyan/work/.nbautoeval, in the student's work
//     directory, so that it lands on the host;
//   - every file under .nbhosting/jupyter/ mounted read-only at the same
//     place under /home/jovyan/.jupyter, one file at a time, so the server can
//     still write its own files there (nbhosting does the same).
//
// Only real directories and files inside the course tree are mounted: a
// symlink in a course repo never brings a host path into a container.
// Missing parts are left out, never created.
package preset

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Home is the home directory of nbhosting's images (docker-stacks' jovyan).
const Home = "/home/jovyan"

// Additions are the mounts and environment a preset adds.
type Additions struct {
	// Binds are HOST:CONTAINER:ro mounts.
	Binds []string
	Env   map[string]string
	// Notes say what was left out and why (a bad mapping, a symlink).
	Notes []string
}

// DefaultStatic are nbhosting's static top-levels when a course names none
// (an empty static-mappings: list counts as none, as in nbhosting).
var DefaultStatic = []string{"data", "media"}

// Nbhosting returns the additions of the nbhosting preset for the course
// checked out at courseDir. An error means the course tree could not be
// read at all; smaller problems become Notes.
func Nbhosting(courseDir string) (Additions, error) {
	real, err := filepath.EvalSymlinks(courseDir)
	if err != nil {
		return Additions{}, fmt.Errorf("course tree %s: %w", courseDir, err)
	}
	a := Additions{Env: map[string]string{
		"NBAUTOEVAL_LOG": Home + "/work/.nbautoeval",
	}}
	if dir, ok := a.inside(real, "modules", true); ok {
		a.Binds = append(a.Binds, dir+":"+Home+"/modules:ro")
		a.Env["PYTHONPATH"] = Home + "/modules"
	}
	tops, notes := staticTops(real)
	a.Notes = append(a.Notes, notes...)
	for _, top := range tops {
		if dir, ok := a.inside(real, top, true); ok {
			a.Binds = append(a.Binds, dir+":"+Home+"/static/"+top+":ro")
		}
	}
	files, err := jupyterFiles(real)
	if err != nil {
		return Additions{}, err
	}
	for _, rel := range files {
		if f, ok := a.inside(real, rel.from, false); ok {
			a.Binds = append(a.Binds, f+":"+Home+"/.jupyter/"+rel.to+":ro")
		}
	}
	return a, nil
}

// inside returns root/rel when it is a directory (dir) or a regular file
// (!dir) whose every component is inside root and none a symlink. A missing
// path is left out silently; anything else is left out with a note.
func (a *Additions) inside(root, rel string, dir bool) (string, bool) {
	p := root
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false
		}
		if err != nil {
			a.Notes = append(a.Notes, fmt.Sprintf("%s: %v", rel, err))
			return "", false
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			a.Notes = append(a.Notes, fmt.Sprintf("%s: not mounted, %s is a symlink", rel, part))
			return "", false
		}
	}
	st, _ := os.Lstat(p)
	if dir != st.IsDir() || (!dir && !st.Mode().IsRegular()) {
		a.Notes = append(a.Notes, fmt.Sprintf("%s: not mounted, not a %s", rel, map[bool]string{true: "directory", false: "regular file"}[dir]))
		return "", false
	}
	return p, true
}

// staticTops reads the static-mappings of the course's nbhosting.yaml
// files and returns the first component of each destination, sorted, as
// nbhosting's StaticMapping.static_toplevels does.
func staticTops(root string) ([]string, []string) {
	type mapping struct {
		Source      string `yaml:"source"`
		Destination string `yaml:"destination"`
	}
	var all []mapping
	var notes []string
	for _, name := range []string{"nbhosting/nbhosting.yaml", ".nbhosting/nbhosting.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var doc struct {
			StaticMappings []mapping `yaml:"static-mappings"`
		}
		if err == nil {
			err = yaml.Unmarshal(b, &doc)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v (static-mappings ignored)", name, err))
			continue
		}
		all = append(all, doc.StaticMappings...)
	}
	if len(all) == 0 {
		return DefaultStatic, notes
	}
	var tops []string
	for _, m := range all {
		top, _, _ := strings.Cut(path.Clean(m.Destination), "/")
		if m.Destination == "" || top == "." || top == ".." || top == "" || strings.HasPrefix(m.Destination, "/") {
			notes = append(notes, fmt.Sprintf("static mapping %q -> %q: destination must be a relative path in the course", m.Source, m.Destination))
			continue
		}
		if !slices.Contains(tops, top) {
			tops = append(tops, top)
		}
	}
	slices.Sort(tops)
	return tops, notes
}

type jupyterFile struct{ from, to string }

// jupyterFiles lists the files of .nbhosting/jupyter/, and the two older
// names nbhosting still reads (.nbhosting/nbconfig/notebook.json,
// .nbhosting/labconfig/default_setting_overrides.json) unless jupyter/ has
// them too. Paths are slash-separated and relative.
func jupyterFiles(root string) ([]jupyterFile, error) {
	var out []jupyterFile
	base := filepath.Join(root, ".nbhosting", "jupyter")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == base {
				return filepath.SkipDir
			}
			return err
		}
		// WalkDir does not follow symlinks; inside() refuses them.
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		out = append(out, jupyterFile{from: ".nbhosting/jupyter/" + rel, to: rel})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read .nbhosting/jupyter: %w", err)
	}
	for _, old := range []string{"nbconfig/notebook.json", "labconfig/default_setting_overrides.json"} {
		if !slices.ContainsFunc(out, func(f jupyterFile) bool { return f.to == old }) {
			if _, err := os.Lstat(filepath.Join(root, ".nbhosting", old)); err == nil {
				out = append(out, jupyterFile{from: ".nbhosting/" + old, to: old})
			}
		}
	}
	slices.SortFunc(out, func(a, b jupyterFile) int { return strings.Compare(a.to, b.to) })
	return out, nil
}
