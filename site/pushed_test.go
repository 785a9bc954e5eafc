package site_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/site"
)

// A push maps to the courses of the pushed remotes, however the forge
// spells their URLs; a push to the config repo is one to the courses it
// holds; a push to a repo the site does not use is none of its business.
func TestPushed(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.MkdirAll(config, 0o755); err != nil {
		t.Fatal(err)
	}
	b, c := filepath.Join(dir, "b.git"), filepath.Join(dir, "c.git")
	yaml := "version: 1\ncourses:\n  a: {repo: .}\n  b: {repo: " + b + "}\n  b2: {repo: " + b + ", branch: dev}\n  c: {repo: " + c + "}\n"
	if err := os.WriteFile(filepath.Join(config, "courses.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, config, "init", "-q", "-b", "main")
	testenv.Git(t, config, "add", "-A")
	testenv.Git(t, config, "commit", "-q", "-m", "config")
	st, err := site.New(site.Options{Config: config, Root: filepath.Join(dir, "root"),
		ContainerEngine: &recordingEngine{}, ImageEngine: noImages{}})
	if err != nil {
		t.Fatal(err)
	}
	key := gitwatch.NormalizeURL
	for _, tt := range []struct {
		name    string
		keys    []string
		courses []string
		ours    bool
	}{
		{"config repo", []string{key(config)}, []string{"a"}, true},
		{"a course repo, every course on it", []string{key("file://" + b)}, []string{"b", "b2"}, true},
		{"two course repos", []string{key(b), key(c)}, []string{"b", "b2", "c"}, true},
		{"another repo", []string{key(filepath.Join(dir, "other.git"))}, nil, false},
		{"nothing", nil, nil, false},
	} {
		courses, ours := st.Pushed(t.Context(), tt.keys)
		if !slices.Equal(courses, tt.courses) || ours != tt.ours {
			t.Errorf("%s: Pushed(%v) = %v, %v; want %v, %v", tt.name, tt.keys, courses, ours, tt.courses, tt.ours)
		}
	}
}
