// Package manifest defines the desired state of a course site — the
// courses.yaml file of the config repo — and parses and validates it.
//
// It is pure: it imports neither git nor Docker. Whatever it needs to know
// about repository contents (does images/x.dockerfile exist?) it asks through
// the Sources interface.
package manifest

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/rootdir"
)

// FileName is the name of the desired-state file inside the config repo.
const FileName = "courses.yaml"

// Config is a parsed and validated courses.yaml, with defaults merged into
// every course.
type Config struct {
	Version   int               `json:"version"`
	Defaults  Defaults          `json:"defaults,omitempty"`
	Schedules Schedules         `json:"schedules,omitempty"`
	Build     Build             `json:"build,omitempty"`
	Engine    Engine            `json:"engine,omitempty"`
	Students  Students          `json:"students,omitempty"`
	Images    map[string]Image  `json:"images,omitempty"`
	Courses   map[string]Course `json:"courses"`
	Notify    []Notifier        `json:"notify,omitempty"`

	// file and pos say where each field path was written, for messages
	// about this config after Parse.
	file string
	pos  map[string]position
}

// Defaults apply to every course that does not set the field itself.
type Defaults struct {
	Branch      string    `json:"branch,omitempty"`
	Idle        Duration  `json:"idle,omitempty"`
	Lingering   Duration  `json:"lingering,omitempty"`
	RetireLimit int       `json:"retire-limit,omitempty"`
	Container   Container `json:"container,omitempty"`
	Freeze      []Freeze  `json:"freeze,omitempty"`
	// WarmMax caps the servers warm windows keep started across the whole
	// site at once (DefaultWarmMax when zero): warm servers hold memory
	// nobody uses yet.
	WarmMax int `json:"warm-max,omitempty"`
	// Workspace is how much of the course each student's own copy (their
	// workspace, their work folder) is given: copy (every file on the
	// first visit; the default), lazy (a file when the student first opens
	// it) or none (the folder is the student's alone).
	Workspace string `json:"workspace,omitempty"`
	// WorkspaceExclude are patterns of course paths kept out of
	// workspaces, on top of .git* and .nbhosting/ (always out): globs,
	// gitignore-like (solutions/, *.pyc, /draft.md).
	WorkspaceExclude []string `json:"workspace-exclude,omitempty"`
	// WorkspaceRetention is how long the backups taken before a merge or
	// a reset are kept (the latest is always kept).
	WorkspaceRetention Duration `json:"workspace-retention,omitempty"`
	// UI is the notebook interface students land on; auto by default.
	UI UI `json:"ui,omitempty"`
}

// UI is the notebook interface a course's students land on and its deep
// links open: JupyterLab (/lab, lab/tree/PATH), the classic notebook
// (/tree, notebooks/PATH — nbclassic, Notebook 6, or Notebook 7's UI), or
// whatever the image's `jupyter lab` starts (auto).
type UI string

// The values of UI.
const (
	// UIAuto adds nothing to the command: the server lands where the
	// image's `jupyter lab` does, and a deep link asks the running server
	// whether it has JupyterLab.
	UIAuto    UI = "auto"
	UILab     UI = "lab"
	UIClassic UI = "classic"
)

// UIs are the known values of UI.
var UIs = []UI{UIAuto, UILab, UIClassic}

// DefaultURL is the page, under the server's base URL, that a server of
// this UI lands on ("" for auto: the image's choice).
func (u UI) DefaultURL() string {
	switch u {
	case UILab:
		return "/lab"
	case UIClassic:
		return "/tree"
	}
	return ""
}

// The values of workspace:.
const (
	WorkspaceCopy = "copy"
	WorkspaceLazy = "lazy"
	WorkspaceNone = "none"
)

// WorkspaceModes are the known values of workspace:.
var WorkspaceModes = []string{WorkspaceCopy, WorkspaceLazy, WorkspaceNone}

// Container says how a student's container is made. Strings may hold the
// placeholders {root}, {course}, {student}, {uid}, {port} and {prefix} (the
// student's stable URL prefix behind the front door, /u/{course}/{student}/).
type Container struct {
	// Port is the server's port inside the container.
	Port    int               `json:"port,omitempty"`
	Memory  ByteSize          `json:"memory,omitempty"`
	CPUs    float64           `json:"cpus,omitempty"`
	Command []string          `json:"command,omitempty"`
	Mounts  []string          `json:"mounts,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// User runs the container's command: root by default, as nbhosting
	// runs it, because the start script must switch to the student's uid
	// and images such as docker-stacks' end with USER jovyan. It may hold
	// placeholders ("{uid}" runs the command as the student directly).
	User string `json:"user,omitempty"`
	// Entrypoint replaces the image's ENTRYPOINT. Unset or empty means
	// none, as nbhosting's --entrypoint=: docker-stacks' entrypoint would
	// otherwise hand the command over to jovyan before the start script
	// runs. To keep an image's entrypoint, write it here.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Token is the Jupyter token the server is started with; the activity
	// probe sends it. It may hold placeholders. Unset, each container gets
	// a secret derived from a site key (see docs/operations.md, "Jupyter tokens").
	Token string `json:"token,omitempty"`
	// Preset adds a known environment to the container: "nbhosting" gives
	// a course's notebooks what they expect under nbhosting (modules/ on
	// PYTHONPATH, static top-levels, NBAUTOEVAL_LOG, .nbhosting/jupyter/).
	Preset string `json:"preset,omitempty"`
	// Constraints are Swarm placement constraints (engine.kind: swarm).
	Constraints []string `json:"constraints,omitempty"`
}

// Presets are the known values of Container.Preset.
var Presets = []string{PresetNbhosting}

// PresetNbhosting is the preset of a course written for nbhosting.
const PresetNbhosting = "nbhosting"

// Freeze is a window, starting at each activation of Cron and lasting For,
// during which no container of the course is stopped or removed for
// staleness or lingering.
type Freeze struct {
	Cron string   `json:"cron"`
	For  Duration `json:"for"`
}

// Warm is a warm window of a course: from each activation of Cron and for
// For, the servers of the expected students (Students) are kept started,
// at most Max of them.
type Warm struct {
	Cron string   `json:"cron"`
	For  Duration `json:"for"`
	// Students says who is expected: "recent(30d)" (students who had a
	// server of the course in the last 30 days) or "file:PATH" (one
	// student a line in the course checkout, # comments allowed).
	Students string `json:"students"`
	// Max caps the course's warm servers (DefaultWarmMax when zero).
	Max int `json:"max,omitempty"`
}

// WarmStudents is what a Warm's Students says: either Recent (a look-back)
// or File (a path in the course checkout).
type WarmStudents struct {
	Recent time.Duration
	File   string
}

// ParseWarmStudents reads a warm window's students: value.
func ParseWarmStudents(s string) (WarmStudents, error) {
	if f, ok := strings.CutPrefix(s, "file:"); ok {
		if f == "" {
			return WarmStudents{}, fmt.Errorf("file: needs a path in the course, e.g. file:students.txt")
		}
		return WarmStudents{File: f}, nil
	}
	if d, ok := strings.CutPrefix(s, "recent("); ok {
		if d, ok := strings.CutSuffix(d, ")"); ok {
			v, err := ParseDuration(d)
			if err != nil {
				return WarmStudents{}, err
			}
			if v <= 0 {
				return WarmStudents{}, fmt.Errorf("recent() needs a positive look-back, e.g. recent(30d)")
			}
			return WarmStudents{Recent: v}, nil
		}
	}
	return WarmStudents{}, fmt.Errorf("unknown students %q (want recent(30d) or file:PATH)", s)
}

// Schedules are robfig/cron expressions (descriptors such as "@every 1m"
// allowed). An empty rebuild is off; an empty pull or reconcile is the
// daemon's default (every 5 minutes): a site without polling would miss
// every push its webhooks lose.
type Schedules struct {
	Pull      string `json:"pull,omitempty"`
	Reconcile string `json:"reconcile,omitempty"`
	Rebuild   string `json:"rebuild,omitempty"`
}

// Build tunes image building for the whole site.
type Build struct {
	// Concurrency bounds the number of builds running at once.
	Concurrency int `json:"concurrency,omitempty"`
	// Keep is how many builds of each image are kept; older ones are removed
	// once no container uses them.
	Keep int `json:"keep,omitempty"`
	// Timeout bounds one build, smoke test included.
	Timeout Duration `json:"timeout,omitempty"`
}

// Students says which uids students' servers run as.
type Students struct {
	// UIDs is the range FIRST-LAST (e.g. 100000-199999) the site
	// allocates a stable uid from to each student with no host account
	// (and no uid given to spawn); DefaultStudentUIDs when empty.
	UIDs string `json:"uids,omitempty"`
	// MinUID is the lowest uid a server may run as, whatever gave it: a
	// host account, the API, a container's label, the allocation
	// (DefaultMinUID when 0).
	MinUID int `json:"min-uid,omitempty"`
}

// DefaultStudentUIDs is the range uids are allocated from when
// students.uids says none: students need no host account, and these sit
// far above ordinary ones (which start at 1000).
const DefaultStudentUIDs = "100000-199999"

// UIDRange returns the bounds of UIDs (DefaultStudentUIDs when empty); ok
// is false when it is not FIRST-LAST.
func (s Students) UIDRange() (first, last int, ok bool) {
	a, b, found := strings.Cut(cmp.Or(s.UIDs, DefaultStudentUIDs), "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	return first, last, err1 == nil && err2 == nil && first >= 0 && last >= 0
}

// Floor is MinUID, or DefaultMinUID when unset.
func (s Students) Floor() int {
	if s.MinUID > 0 {
		return s.MinUID
	}
	return DefaultMinUID
}

// Image is an explicit image definition from the images: section.
type Image struct {
	// Dockerfile is a path in the config repo.
	Dockerfile string            `json:"dockerfile,omitempty"`
	BuildArgs  map[string]string `json:"build-args,omitempty"`
	// Smoke is a command run in a throwaway container of a new build; it
	// must exit 0 for the build to be published.
	Smoke []string `json:"smoke,omitempty"`
	// Pin names the build key of an earlier build to serve instead of the
	// newest one.
	Pin string `json:"pin,omitempty"`
}

// Course is one course of the site, with defaults merged in.
type Course struct {
	// Name is the key of the course in courses:, filled in by Parse.
	Name   string `json:"-"`
	Repo   string `json:"repo"`
	Branch string `json:"branch,omitempty"`
	// Path is the course root inside its repo ("" for the repo root).
	Path string `json:"path,omitempty"`
	// Image defaults to the course name.
	Image       string    `json:"image,omitempty"`
	Idle        Duration  `json:"idle,omitempty"`
	Lingering   Duration  `json:"lingering,omitempty"`
	RetireLimit int       `json:"retire-limit,omitempty"`
	Container   Container `json:"container,omitempty"`
	Freeze      []Freeze  `json:"freeze,omitempty"`
	// Warm are the windows before which the expected students' servers
	// are started, so that a class opens at the speed of a warm server.
	Warm []Warm `json:"warm,omitempty"`
	UI   UI     `json:"ui,omitempty"`
	// Archived courses get no new containers; existing ones are removed
	// once idle.
	Archived bool `json:"archived,omitempty"`
	// Suspend puts the course on hold: no pulls, builds or retirements of
	// its containers, while its students are still served (a term break,
	// an incident under investigation).
	Suspend bool `json:"suspend,omitempty"`
	// Credentials are how to reach Repo, when it is not public.
	Credentials *Credentials `json:"credentials,omitempty"`
	// Workspace is how much of the course each student's own copy (their
	// workspace, their work folder) is given: copy (every file on the
	// first visit; the default), lazy (a file when the student first opens
	// it) or none (the folder is the student's alone).
	Workspace string `json:"workspace,omitempty"`
	// WorkspaceExclude are patterns of course paths kept out of
	// workspaces, on top of .git* and .nbhosting/ (always out): globs,
	// gitignore-like (solutions/, *.pyc, /draft.md).
	WorkspaceExclude []string `json:"workspace-exclude,omitempty"`
	// WorkspaceRetention is how long the backups taken before a merge or
	// a reset are kept (the latest is always kept).
	WorkspaceRetention Duration `json:"workspace-retention,omitempty"`
}

// Credentials name where secrets are read from; the secrets themselves never
// appear in courses.yaml.
type Credentials struct {
	Username string `json:"username,omitempty"`
	// PasswordFile or PasswordEnv hold an https password or token.
	PasswordFile string `json:"password-file,omitempty"`
	PasswordEnv  string `json:"password-env,omitempty"`
	// SSHKeyFile and KnownHostsFile are for ssh:// and scp-like URLs.
	SSHKeyFile     string `json:"ssh-key-file,omitempty"`
	KnownHostsFile string `json:"known-hosts-file,omitempty"`
}

// Notifier is a destination for notifications (build failed or recovered,
// config rejected, remote unreachable).
type Notifier struct {
	// Kind is "json" (a generic JSON POST) or "slack" (Slack-compatible).
	Kind string `json:"kind"`
	// URLFile or URLEnv hold the URL: webhook URLs are secrets.
	URLFile string `json:"url-file,omitempty"`
	URLEnv  string `json:"url-env,omitempty"`
}

// Built-in defaults, used where courses.yaml says nothing (nbhosting-like).
const (
	DefaultBranch      = "main"
	DefaultIdle        = 2 * time.Hour
	DefaultLingering   = 48 * time.Hour
	DefaultRetireLimit = 50
	DefaultPort        = 8888
	// DefaultUser is root by number: "root" by name fails in images that
	// have no /etc/passwd.
	DefaultUser        = "0"
	DefaultConcurrency = 2
	// DefaultMinUID is the lowest uid a student's server runs as when
	// students.min-uid says nothing: the first uid of ordinary accounts on
	// Debian, Ubuntu and Fedora (UID_MIN in /etc/login.defs). Below it are
	// root and the system accounts.
	DefaultMinUID  = 1000
	DefaultKeep    = 3
	DefaultBuildTO = time.Hour
	// DefaultWarmMax caps warm servers, per course and per site, when
	// courses.yaml says nothing: a class, not a school.
	DefaultWarmMax = 100
	// DefaultWorkspaceRetention keeps two weeks of what merges replaced:
	// long enough for a student to notice over a week-end and a week.
	DefaultWorkspaceRetention = 14 * 24 * time.Hour
	DefaultUI                 = UIAuto
)

// DefaultCommand and DefaultMounts are the container settings of a course
// that says nothing about them. The mounts are the student's work folder
// and the course's work tree, where the ROOT layout puts them (spelled with
// placeholders: "{root}/students/{student}/{course}" and
// "{root}/courses/{course}").
var (
	DefaultCommand = []string{"start-in-dir-as-uid.sh", "/home/jovyan", "{uid}", "jupyter", "lab",
		"--ip=0.0.0.0", "--no-browser", "--ServerApp.base_url=/{port}/", "--ServerApp.root_dir=/home/jovyan/work"}
	DefaultMounts = []string{rootdir.StudentCourse("{root}", "{student}", "{course}") + ":/home/jovyan/work",
		rootdir.Course("{root}", "{course}") + ":/home/jovyan/course:ro"}
)
