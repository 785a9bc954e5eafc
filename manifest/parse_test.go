package manifest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// want is one expected problem, written in a testdata file as
//
//	# want: LINE:COL: PATH: MESSAGE-FRAGMENT
//	# want: LINE: MESSAGE-FRAGMENT        (no column, no path)
type want struct {
	line, col int
	path, msg string
}

var wantLine = regexp.MustCompile(`(?m)^# want: (\d+)(?::(\d+))?: (.*)$`)
var wantPath = regexp.MustCompile(`^([^ :][^:]*?): (.*)$`)

func readWants(t *testing.T, data []byte) []want {
	t.Helper()
	var ws []want
	for _, m := range wantLine.FindAllStringSubmatch(string(data), -1) {
		w := want{msg: m[3]}
		w.line, _ = strconv.Atoi(m[1])
		if m[2] != "" {
			w.col, _ = strconv.Atoi(m[2])
			pm := wantPath.FindStringSubmatch(m[3])
			if pm == nil {
				t.Fatalf("bad want line %q: want LINE:COL: PATH: MESSAGE", m[0])
			}
			w.path, w.msg = pm[1], pm[2]
		}
		ws = append(ws, w)
	}
	if len(ws) == 0 {
		t.Fatal("no # want: lines")
	}
	return ws
}

// TestBadConfigs parses every file of testdata/bad and checks that exactly
// the problems its "# want:" lines announce are reported, at their line,
// column and field path.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("only %d broken configs in testdata/bad; keep at least 20", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants := readWants(t, data)
			c, _, err := Parse("courses.yaml", data)
			if err == nil {
				t.Fatalf("Parse succeeded (%d courses); want %d problems", len(c.Courses), len(wants))
			}
			if c != nil {
				t.Error("Parse returned a config along with errors")
			}
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("error is %T, want manifest.Errors", err)
			}
			if len(errs) != len(wants) {
				t.Errorf("got %d problems, want %d:\n%v", len(errs), len(wants), err)
			}
			for i, w := range wants {
				if i >= len(errs) {
					break
				}
				p := errs[i]
				if p.File != "courses.yaml" || p.Line != w.line || p.Col != w.col || p.Path != w.path || !strings.Contains(p.Message, w.msg) {
					t.Errorf("problem %d:\n got %s\nwant %d:%d: %s: …%s…", i, p, w.line, w.col, w.path, w.msg)
				}
			}
		})
	}
}

func TestParseDefaultsMerged(t *testing.T) {
	const src = `version: 1
defaults:
  idle: 1h
  container:
    memory: 1g
    env: {A: a, B: b}
  freeze: [{cron: "0 8 * * 1", for: 2h}]
  workspace-exclude: [solutions/]
courses:
  plain: {repo: /srv/plain}
  custom:
    repo: /srv/custom
    branch: dev
    workspace: lazy
    workspace-exclude: []
    workspace-retention: 2d
    idle: 10m
    ui: classic
    freeze: []
    container:
      memory: 3g
      env: {B: override, C: c}
`
	c, warns, err := Parse("courses.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}
	plain, custom := c.Courses["plain"], c.Courses["custom"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"plain.Name", plain.Name, "plain"},
		{"plain.Branch", plain.Branch, DefaultBranch},
		{"plain.Idle", plain.Idle.Std(), time.Hour},
		{"plain.Lingering", plain.Lingering.Std(), DefaultLingering},
		{"plain.Memory", plain.Container.Memory, ByteSize(1 << 30)},
		{"plain.Port", plain.Container.Port, DefaultPort},
		{"plain.Command[0]", plain.Container.Command[0], StartScript},
		{"plain.Env", len(plain.Container.Env), 2},
		{"plain.Freeze", len(plain.Freeze), 1},
		{"plain.Image", plain.ImageOf(), "plain"},
		{"plain.UI", plain.UI, UIAuto},
		{"custom.UI", custom.UI, UIClassic},
		{"custom.Branch", custom.Branch, "dev"},
		{"custom.Idle", custom.Idle.Std(), 10 * time.Minute},
		{"custom.Freeze (explicitly none)", len(custom.Freeze), 0},
		{"custom.Memory", custom.Container.Memory, ByteSize(3 << 30)},
		{"custom.Env.A", custom.Container.Env["A"], "a"},
		{"custom.Env.B", custom.Container.Env["B"], "override"},
		{"custom.Env.C", custom.Container.Env["C"], "c"},
		{"custom.Mounts", len(custom.Container.Mounts), len(DefaultMounts)},
		{"build.Keep", c.Build.Keep, DefaultKeep},
		{"plain.Workspace", plain.Workspace, WorkspaceCopy},
		{"plain.WorkspaceExclude", len(plain.WorkspaceExclude), 1},
		{"plain.WorkspaceRetention", plain.WorkspaceRetention.Std(), DefaultWorkspaceRetention},
		{"custom.Workspace", custom.Workspace, WorkspaceLazy},
		{"custom.WorkspaceExclude (explicitly none)", len(custom.WorkspaceExclude), 0},
		{"custom.WorkspaceRetention", custom.WorkspaceRetention.Std(), 48 * time.Hour},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	// The defaults' own map must not have been changed by the merge.
	if c.Defaults.Container.Env["B"] != "b" {
		t.Errorf("defaults env B = %q after merge, want b", c.Defaults.Container.Env["B"])
	}
}

func TestParseWarnings(t *testing.T) {
	const src = `version: 1
images:
  unused: {dockerfile: images/unused.dockerfile}
  nbhosting/core: {dockerfile: images/core.dockerfile}   # a base of course images: no warning
courses:
  a:
    repo: /srv/a
    idle: 4h
    lingering: 1h
`
	_, warns, err := Parse("courses.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, w := range warns {
		got = append(got, w.String())
	}
	wantPrefixes := []string{
		"courses.yaml:3:3: warning: images.unused: no course uses image unused",
		"courses.yaml:9:5: warning: courses.a.lingering: 1h0m0s is shorter than idle",
	}
	if len(got) != len(wantPrefixes) {
		t.Fatalf("warnings = %q", got)
	}
	for i, w := range wantPrefixes {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("warning %d = %q, want prefix %q", i, got[i], w)
		}
	}
}

func TestParseMergeKeysAndAliases(t *testing.T) {
	const src = `version: 1
x-common: &common
  repo: /srv/shared
  idle: 45m
courses:
  a:
    <<: *common
    path: a
  b:
    <<: *common
    idle: 1h
`
	c, _, err := Parse("courses.yaml", []byte(src))
	if err == nil {
		t.Fatalf("x-common is not a field: want an error, got %d courses", len(c.Courses))
	}
	if !strings.Contains(err.Error(), `courses.yaml:2:1: x-common: unknown field`) {
		t.Fatalf("err = %v", err)
	}
	// Anchors declared inside a known field work.
	const ok = `version: 1
courses:
  a: &a
    repo: /srv/shared
    idle: 45m
  b:
    <<: *a
    idle: 1h
`
	c, _, err = Parse("courses.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if c.Courses["b"].Repo != "/srv/shared" || c.Courses["b"].Idle.Std() != time.Hour || c.Courses["a"].Idle.Std() != 45*time.Minute {
		t.Errorf("merge: a=%+v b=%+v", c.Courses["a"], c.Courses["b"])
	}
}

// TestExamplesLoad keeps examples/ valid: the demo site make run serves
// and the reference site of public course repos.
func TestExamplesLoad(t *testing.T) {
	for _, tc := range []struct {
		dir    string
		images string
	}{
		{"../examples", "demo,nbhosting/minimal-notebook,shared"},
		{"../examples/reference", "datascience,flotpython,python-intro"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			file := filepath.Join(tc.dir, "courses.yaml")
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, warns, err := Parse(file, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != 0 {
				t.Errorf("%s has warnings: %v", file, warns)
			}
			for _, p := range c.CheckImages(dirSources{dir: tc.dir}) {
				if !p.Warning {
					t.Errorf("examples: %s", p)
				}
			}
			if got := c.ImageNames(); strings.Join(got, ",") != tc.images {
				t.Errorf("ImageNames = %v, want %s", got, tc.images)
			}
		})
	}
}

// dirSources answers Sources from a directory; course repos are unknown.
type dirSources struct{ dir string }

func (d dirSources) ConfigFile(p string) bool {
	fi, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(p)))
	return err == nil && fi.Mode().IsRegular()
}
func (d dirSources) ReadConfigFile(p string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(p)))
}

func (dirSources) CourseFile(string, string) (bool, bool) { return false, false }

var _ Sources = dirSources{}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, "../examples/courses.yaml", "../examples/reference/courses.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := Parse("courses.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v: want exactly one", c != nil, err)
		}
		if err != nil {
			for _, p := range err.(Errors) {
				if p.Message == "" {
					t.Fatalf("empty message in %v", p)
				}
			}
		}
	})
}

// TestBracesThatAreNotPlaceholders: only {name} is a placeholder; JSON in
// an environment value is text.
func TestBracesThatAreNotPlaceholders(t *testing.T) {
	const src = `version: 1
courses:
  a:
    repo: /srv/a
    container:
      env: {KERNELS: '{"python3": {"argv": []}}', WORK: "{root}/x"}
`
	c, _, err := Parse("courses.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Courses["a"].Container.Env["KERNELS"]; got != `{"python3": {"argv": []}}` {
		t.Errorf("KERNELS = %q", got)
	}
}

// The default mounts are the student's work folder and the course's work
// tree where the ROOT layout keeps them: what containers creates and the
// syncer checks out must be what a default container sees.
func TestDefaultMountsFollowTheRootLayout(t *testing.T) {
	want := []string{"{root}/students/{student}/{course}:/home/jovyan/work", "{root}/courses/{course}:/home/jovyan/course:ro"}
	if !slices.Equal(DefaultMounts, want) {
		t.Errorf("DefaultMounts = %q, want %q", DefaultMounts, want)
	}
}

// TestRepoUserNeverQuoted: a URL's user information is refused without
// being quoted (the refusal goes to logs, status and history), and the
// refusal says what to write instead.
func TestRepoUserNeverQuoted(t *testing.T) {
	for _, repo := range []string{
		"https://ghp_SECRETTOKEN@example.org/a.git",
		"http://bot:SECRETTOKEN@127.0.0.1:3000/b.git",
		"https://ghp_SECRETTOKEN@example.org/%zz.git", // unparsable too
	} {
		_, _, err := Parse("courses.yaml", []byte("version: 1\ncourses:\n  a:\n    repo: "+repo+"\n"))
		if err == nil {
			t.Errorf("repo %s: accepted", repo)
			continue
		}
		if strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("repo %s: the refusal quotes the secret: %v", repo, err)
		}
		if !strings.Contains(err.Error(), "courses.yaml:4:5: courses.a.repo: ") {
			t.Errorf("repo %s: %v, want it placed at courses.yaml:4:5: courses.a.repo", repo, err)
		}
	}
}
