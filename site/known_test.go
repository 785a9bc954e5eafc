package site

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// TestKnownCourses: the record of the courses a site has had grows with
// each applied config (a plan only reads it), is private to the site, and
// when it cannot be read the site adopts only what courses.yaml names and
// leaves the broken record for a human.
func TestKnownCourses(t *testing.T) {
	cfg := func(names ...string) *manifest.Config {
		c := &manifest.Config{Courses: map[string]manifest.Course{}}
		for _, n := range names {
			c.Courses[n] = manifest.Course{}
		}
		return c
	}
	root := t.TempDir()
	file := rootdir.KnownCourses(root)
	rec := &knownRecord{path: file, log: slog.New(slog.DiscardHandler)}
	for _, step := range []struct {
		desc    string
		cfg     *manifest.Config
		record  bool
		corrupt bool
		want    []string // the courses had, as returned
		stored  string   // the file after the step ("" = absent)
	}{
		{desc: "a plan before any pass reads nothing, writes nothing", cfg: cfg("a"), want: []string{"a"}},
		{desc: "a pass records its courses", cfg: cfg("a", "b"), record: true, want: []string{"a", "b"},
			stored: "{\n  \"courses\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{desc: "a course removed stays had", cfg: cfg("b"), record: true, want: []string{"a", "b"},
			stored: "{\n  \"courses\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{desc: "every course removed", cfg: cfg(), record: true, want: []string{"a", "b"},
			stored: "{\n  \"courses\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{desc: "a plan does not record a new course", cfg: cfg("c"), want: []string{"a", "b", "c"},
			stored: "{\n  \"courses\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{desc: "a broken record adopts only courses.yaml's, and is kept", cfg: cfg("c"), record: true, corrupt: true,
			want: []string{"c"}, stored: "{broken"},
	} {
		if step.corrupt {
			if err := os.WriteFile(file, []byte("{broken"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got := slices.Sorted(maps.Keys(rec.update(t.Context(), step.cfg, step.record)))
		if !slices.Equal(got, step.want) {
			t.Errorf("%s: had %v, want %v", step.desc, got, step.want)
		}
		b, err := os.ReadFile(file)
		if step.stored == "" {
			if err == nil {
				t.Errorf("%s: record written: %s", step.desc, b)
			}
			continue
		}
		if string(b) != step.stored {
			t.Errorf("%s: record %q, want %q", step.desc, b, step.stored)
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: record mode %v, %v; want 0600", step.desc, fi.Mode().Perm(), err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(root, "state", "*.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
