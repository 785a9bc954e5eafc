package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"testing/fstest"
)

// maxREADME is the README's budget: what and why, the two commands, the
// demo, where to read next. Everything else is a page of docs/.
const maxREADME = 10 * 1024

// pages are the markdown files the checks cover, from the repository root.
func pages(t *testing.T, root string) []Page {
	t.Helper()
	var names []string
	for _, glob := range []string{"README.md", "docs/*.md", "bench/README.md", "bench/*/README.md", "e2e/README.md"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m...)
	}
	var out []Page
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, n)
		out = append(out, Page{Path: filepath.ToSlash(rel), Text: string(b)})
	}
	return out
}

func TestREADMESize(t *testing.T) {
	fi, err := os.Stat(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > maxREADME {
		t.Errorf("README.md is %d bytes, over its %d: move the detail to a page of docs/", fi.Size(), maxREADME)
	}
}

func TestLinks(t *testing.T) {
	root := ".."
	fsys := os.DirFS(root)
	ps := pages(t, root)
	if len(ps) < 5 {
		t.Fatalf("only %d pages found", len(ps))
	}
	for _, p := range ps {
		for _, prob := range CheckLinks(fsys, p) {
			t.Error(prob)
		}
	}
}

func TestCommands(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("builds and runs the binary")
	}
	root := ".."
	bin := filepath.Join(t.TempDir(), "nbh-sync")
	build := exec.Command("go", "build", "-o", bin, "./cmd/nbh-sync")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help, err := exec.Command(bin, "--help").Output()
	if err != nil {
		t.Fatalf("nbh-sync --help: %v", err)
	}
	cli := ParseHelp(string(help))
	for _, c := range []string{"run", "validate", "plan", "sync", "spawn", "status"} {
		if !cli.Commands[c] {
			t.Fatalf("nbh-sync --help lists no %q: the help parser is out of date; it found %v", c, cli.Commands)
		}
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := MakeTargets(string(mk))
	if !targets["run"] || !targets["test"] {
		t.Fatalf("Makefile targets not found: %v", targets)
	}
	for _, p := range pages(t, root) {
		for _, prob := range CheckCommands(p, cli, targets) {
			t.Error(prob)
		}
	}
}

// The checker itself, on small inputs: a broken link must fail.
func TestCheckLinks(t *testing.T) {
	fsys := fstest.MapFS{
		"README.md":         {Data: []byte("# Top\n\n## The students' front door\n\n## Step `one`, two\n")},
		"docs/a.md":         {Data: []byte("# Page A\n\n## Trust model\n\n## Trust model\n\n```\n# not a heading\n```\n<a id=\"custom\"></a>\n")},
		"examples/x.yaml":   {Data: []byte("x: 1\n")},
		"examples/sub/y.go": {Data: []byte("package sub\n")},
	}
	cases := []struct {
		name, page, text string
		bad              int
	}{
		{"file exists", "README.md", "[a](docs/a.md)", 0},
		{"file missing", "README.md", "[a](docs/missing.md)", 1},
		{"directory", "README.md", "[ex](examples/sub/)", 0},
		{"relative up", "docs/a.md", "[r](../README.md)", 0},
		{"outside the repository", "docs/a.md", "[r](../../etc/passwd)", 1},
		{"anchor in another page", "README.md", "[t](docs/a.md#trust-model)", 0},
		{"repeated heading", "README.md", "[t](docs/a.md#trust-model-1)", 0},
		{"html anchor", "README.md", "[t](docs/a.md#custom)", 0},
		{"anchor missing", "README.md", "[t](docs/a.md#trust)", 1},
		{"heading in code is no anchor", "README.md", "[t](docs/a.md#not-a-heading)", 1},
		{"own anchor, punctuation dropped", "README.md", "[f](#the-students-front-door)", 0},
		{"own anchor, code span", "README.md", "[s](#step-one-two)", 0},
		{"own anchor missing", "README.md", "[s](#trust-model)", 1},
		{"old README anchor", "docs/a.md", "[t](../README.md#trust-model)", 1},
		{"web link skipped", "README.md", "[w](https://example.org/x#y)", 0},
		{"image", "README.md", "![i](docs/img/none.png)", 1},
		{"link in code is no link", "README.md", "`[a](nowhere.md)`\n```\n[b](nowhere.md)\n```", 0},
		{"two links, one broken", "README.md", "[a](docs/a.md) and [b](docs/b.md)", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := c.text
			if c.page == "README.md" {
				text = string(fsys["README.md"].Data) + "\n" + text
			} else {
				text = string(fsys[c.page].Data) + "\n" + text
			}
			got := CheckLinks(fsys, Page{Path: c.page, Text: text})
			if len(got) != c.bad {
				t.Errorf("%d problems, want %d: %q", len(got), c.bad, got)
			}
		})
	}
}

func TestCheckCommands(t *testing.T) {
	cli := CLI{
		Commands:   map[string]bool{"run": true, "plan": true, "stop": true, "restart": true, "remove": true, "help": true},
		ValueFlags: map[string]bool{"--config": true, "--root": true},
	}
	targets := MakeTargets("X ?= 1\nrun: build ## r\nbuild:\ntest-podman: TEST_PARALLEL = 1\n.PHONY: run\n")
	if want := []string{"build", "run", "test-podman"}; !slices.Equal(keys(targets), want) {
		t.Fatalf("targets %v, want %v", keys(targets), want)
	}
	cases := []struct {
		name, text string
		bad        int
	}{
		{"command", "`nbh-sync plan`", 0},
		{"unknown command", "`nbh-sync plna`", 1},
		{"after value flags", "```\nnbh-sync --config . --root /var/lib/nbh-sync plan\n```", 0},
		{"unknown after flags", "```sh\nbin/nbh-sync --root .run statuz --json\n```", 1},
		{"path in a flag value is not the command", "```\nls /var/lib/nbh-sync students\n```", 0},
		{"alternatives", "`nbh-sync stop|restart|remove COURSE STUDENT`", 0},
		{"a bad alternative", "`nbh-sync stop|pause COURSE`", 1},
		{"placeholder", "`nbh-sync COMMAND --help`", 0},
		{"synopsis", "```\nnbh-sync [--config SRC] COMMAND\n```", 0},
		{"systemd", "```\nExecStart=/usr/local/bin/nbh-sync run --config x\n```", 0},
		{"prose is not checked", "nbh-sync watches the config repo", 0},
		{"make target", "`make run`", 0},
		{"make with variables", "```\nFUZZTIME=10m make build X=1\n```", 0},
		{"make missing target", "`make tests`", 1},
		{"make in prose", "make it two", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := CheckCommands(Page{Path: "x.md", Text: c.text}, cli, targets)
			if len(got) != c.bad {
				t.Errorf("%d problems, want %d: %q", len(got), c.bad, got)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	help := `Start here:
  nbh-sync validate ./config-repo          check

Usage:
  nbh-sync [command]

Available Commands:
  build       Build
  run         Run

Flags:
      --config string    config repo
  -h, --help             help
      --safe-directory strings   trusted
  -v, --version          version
`
	cli := ParseHelp(help)
	if want := []string{"build", "help", "run"}; !slices.Equal(keys(cli.Commands), want) {
		t.Errorf("commands %v, want %v", keys(cli.Commands), want)
	}
	if want := []string{"--config", "--safe-directory"}; !slices.Equal(keys(cli.ValueFlags), want) {
		t.Errorf("value flags %v, want %v", keys(cli.ValueFlags), want)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Trust model":                   "trust-model",
		"The students' front door":      "the-students-front-door",
		"Hardening: a host per student": "hardening-a-host-per-student",
		"`api` and `site`":              "api-and-site",
		"Files under ROOT":              "files-under-root",
		"A [link](x.md) here":           "a-link-here",
		"Returning student (warm)":      "returning-student-warm",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
