package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/manifest"
)

// runCLI runs the program in-process and returns its exit status and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"example dir", []string{"validate", "../../examples"}, 0, "valid: 2 courses, 3 images"},
		{"example file", []string{"validate", "../../examples/courses.yaml"}, 0, "valid: 2 courses"},
		{"reference example dir", []string{"validate", "../../examples/reference"}, 0, "valid: 5 courses, 3 images"},
		{"broken", []string{"validate", "../../manifest/testdata/bad/many-problems.yaml"}, 1, "many-problems.yaml:9:5: courses.Bad Name.lingering: invalid duration \"1 day\""},
		{"--config used without PATH", []string{"validate", "--config", "../../examples"}, 0, "valid"},
		{"no courses.yaml, no repo", []string{"validate", os.TempDir()}, 1, "not courses.yaml, nor a folder holding one, nor a git repo"},
		{"missing path", []string{"validate", "/nonexistent/x"}, 1, "not courses.yaml, nor a folder holding one, nor a git repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tt.contains) {
				t.Errorf("output lacks %q:\n%s%s", tt.contains, out, errOut)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "--json", "../../manifest/testdata/bad/many-problems.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var rep manifest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not one JSON document: %v\n%s", err, out)
	}
	if rep.Valid || len(rep.Errors) != 7 || rep.Errors[0].Line != 1 || rep.Errors[0].Path != "version" {
		t.Errorf("report = %+v", rep)
	}
}

func TestGlobalFlags(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"--log-level", "loud", "validate", "../../examples"}, 1, `--log-level "loud"`},
		{[]string{"--log-format", "xml", "validate", "../../examples"}, 1, `--log-format "xml"`},
		{[]string{"--log-format", "json", "--log-level", "debug", "validate", "../../examples"}, 0, "valid"},
		{[]string{"nosuchcommand"}, 1, "unknown command"},
		{[]string{"--version"}, 0, "nbh-sync version"},
		{[]string{"completion", "bash"}, 0, "bash completion"},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.contains) {
			t.Errorf("%v: exit %d (want %d), output lacks %q?\n%s%s", tt.args, code, tt.code, tt.contains, out, errOut)
		}
	}
}

// TestHelpEverywhere checks that every command explains itself.
func TestHelpEverywhere(t *testing.T) {
	root := newRootCmd(&globals{})
	for _, c := range root.Commands() {
		if c.Short == "" || (c.Long == "" && c.Name() != "help" && c.Name() != "completion") {
			t.Errorf("%s: missing help text", c.Name())
		}
		code, out, _ := runCLI(t, c.Name(), "--help")
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help: exit %d\n%s", c.Name(), code, out)
		}
	}
}

// TestValidateLintsDockerfiles: validate runs the Dockerfile lint on the
// admin Dockerfiles, with file:line.
func TestValidateLintsDockerfiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir+"/courses.yaml", "version: 1\ncourses:\n  intro:\n    repo: /srv/intro\n    image: base\n")
	write(t, dir+"/images/base.dockerfile", "FROM debian:latest\nUSER jovyan\n")
	code, out, _ := runCLI(t, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{"images/base.dockerfile:1", "images/base.dockerfile:2", "start-in-dir-as-uid.sh"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestValidateGitRepo: a git URL is validated at its committed head.
func TestValidateGitRepo(t *testing.T) {
	work, bare := t.TempDir(), t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	write(t, work+"/courses.yaml", "version: 1\ncourses:\n  intro:\n    repo: .\n    idle: 2 hours\n")
	git(t, work, "add", "-A")
	git(t, work, "commit", "-qm", "bad")
	git(t, bare, "init", "-q", "--bare", "-b", "main")
	git(t, work, "push", "-q", bare, "main")
	code, out, errOut := runCLI(t, "validate", "file://"+bare)
	if code != 1 || !strings.Contains(out, `courses.yaml:5:5: courses.intro.idle: invalid duration "2 hours"`) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

// TestReadOnlyCommandsCreateNoRoot: plan, why and status read the site;
// on a data directory that does not exist they create none (plan fetches
// into a temporary directory and removes it), with or without an engine.
func TestReadOnlyCommandsCreateNoRoot(t *testing.T) {
	cfg := t.TempDir()
	git(t, cfg, "init", "-q", "-b", "main")
	write(t, cfg+"/courses.yaml", "version: 1\ncourses:\n  intro:\n    repo: .\n    path: intro\n")
	write(t, cfg+"/intro/README.md", "# intro\n")
	git(t, cfg, "add", "-A")
	git(t, cfg, "commit", "-qm", "site")
	root := filepath.Join(t.TempDir(), "nbh")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	for _, args := range [][]string{{"plan"}, {"plan", "--json"}, {"why", "intro"}, {"status"}, {"status", "--json"}} {
		code, out, errOut := runCLI(t, append([]string{"--api", "none", "--config", cfg, "--root", root}, args...)...)
		if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v (exit %d) made ROOT: %v\n%s%s", args, code, err, out, errOut)
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Fatalf("%v (exit %d) left %s in the temporary directory\n%s%s", args, code, left[0].Name(), out, errOut)
		}
	}
	// The plan was made from the config repo all the same.
	code, out, errOut := runCLI(t, "--api", "none", "--config", cfg, "--root", root, "plan", "--json")
	if !strings.Contains(out, `"change": "apply"`) {
		t.Errorf("plan on a new site (exit %d) does not apply the config:\n%s%s", code, out, errOut)
	}
}
