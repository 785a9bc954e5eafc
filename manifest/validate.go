package manifest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nbhosting/nbh-sync/dockerfile"
)

// MaxNameLen bounds course and image names: they become parts of container
// names, image names and paths.
const MaxNameLen = 63

var (
	// courseName: lowercase letters, digits, -, _, .; no
	// leading . or -.
	courseName = regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]*$`)
	// imageName is a Docker repository path component, with at most one
	// namespace before it (nbhosting/scipy-notebook, as nbhosting names its
	// core images).
	imageName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)?$`)
	envName   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// placeholder is {name}; other braces (JSON in an env value) are text.
	placeholder = regexp.MustCompile(`\{[A-Za-z_][A-Za-z0-9_]*\}`)
	hexKey      = regexp.MustCompile(`^[0-9a-f]{12,64}$`)
	// userSpec is what the engine takes as a user: name or uid, then
	// optionally :group or :gid.
	userSpec = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$`)
	// scpLike is git's user@host:path form.
	scpLike = regexp.MustCompile(`^(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:[^/]`)
)

// Placeholders are the names a container setting may use in braces.
var Placeholders = []string{"root", "course", "student", "uid", "port", "prefix"}

// CronParser is the parser for every cron expression of courses.yaml: five
// fields, or a descriptor such as @every 1m or @daily.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// validator runs the checks that need values, not just shapes.
type validator struct {
	*walker
	c *Config
}

// at reports a problem at the place path (or its nearest written parent)
// was written.
func (v *validator) at(path string, warning bool, format string, args ...any) {
	if v.bad[path] {
		return // the walk has reported it; its value was blanked
	}
	p := Problem{File: v.file, Path: path, Message: fmt.Sprintf(format, args...), Warning: warning}
	for q := path; ; q = q[:max(strings.LastIndexAny(q, ".["), 0)] {
		if pos, ok := v.pos[q]; ok {
			p.Line, p.Col = pos.line, pos.col
			break
		}
		if q == "" {
			break
		}
	}
	v.probs = append(v.probs, p)
}

func (v *validator) errorf(path, format string, args ...any) { v.at(path, false, format, args...) }
func (v *validator) warnf(path, format string, args ...any)  { v.at(path, true, format, args...) }

func (v *validator) check() {
	c := v.c
	switch c.Version {
	case 1:
	case 0:
		v.errorf("version", "missing; start the file with version: 1")
	default:
		v.errorf("version", "unsupported version %d (this nbh-sync reads version 1)", c.Version)
	}
	v.defaults("defaults", c.Defaults)
	v.cronExpr("schedules.pull", c.Schedules.Pull)
	v.cronExpr("schedules.reconcile", c.Schedules.Reconcile)
	v.cronExpr("schedules.rebuild", c.Schedules.Rebuild)
	if c.Build.Concurrency < 0 || c.Build.Concurrency > 64 {
		v.errorf("build.concurrency", "must be between 1 and 64, got %d", c.Build.Concurrency)
	}
	v.engine("engine", c.Engine)
	v.students("students", c.Students)
	if c.Build.Keep < 0 {
		v.errorf("build.keep", "must be 1 or more, got %d", c.Build.Keep)
	}
	for _, name := range sortedKeys(c.Images) {
		v.image("images."+name, name, c.Images[name])
	}
	if len(c.Courses) == 0 {
		v.warnf("courses", "no courses: every managed container will be retired when idle")
	}
	used := map[string]bool{}
	for _, name := range sortedKeys(c.Courses) {
		co := c.Courses[name]
		co.Name = name
		used[co.ImageOf()] = true
		v.course("courses."+name, co)
	}
	for _, name := range sortedKeys(c.Images) {
		// An nbhosting/ core image is there to be built FROM by course
		// Dockerfiles, which the config alone does not show.
		if !used[name] && !strings.HasPrefix(name, dockerfile.CoreNamespace) {
			v.warnf("images."+name, "no course uses image %s; it is built all the same", name)
		}
	}
	for i, n := range c.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		if n.Kind != "json" && n.Kind != "slack" {
			v.errorf(p+".kind", "unknown kind %q (want json or slack)", n.Kind)
		}
		if (n.URLFile == "") == (n.URLEnv == "") {
			v.errorf(p, "set exactly one of url-file and url-env")
		}
	}
}

func (v *validator) defaults(p string, d Defaults) {
	if d.Branch != "" {
		v.branch(p+".branch", d.Branch)
	}
	v.limits(p, d.Idle, d.Lingering, d.RetireLimit)
	v.container(p+".container", d.Container)
	v.freeze(p+".freeze", d.Freeze)
	if d.WarmMax < 0 {
		v.errorf(p+".warm-max", "must not be negative")
	}
	v.workspace(p, d.Workspace, d.WorkspaceExclude, d.WorkspaceRetention)
	v.ui(p+".ui", d.UI)
}

func (v *validator) ui(p string, u UI) {
	if u != "" && !slices.Contains(UIs, u) {
		v.errorf(p, "unknown ui %q (known: auto, lab, classic)", u)
	}
}

func (v *validator) course(p string, co Course) {
	v.name(p, co.Name, "course", courseName)
	// Container names are COURSE-x-STUDENT, read back by their first -x-:
	// a course a-x with student y and a course a with student x-y would
	// both be a-x-x-y.
	switch {
	case strings.Contains(co.Name, "-x-"):
		v.errorf(p, "course name %q must not contain -x-: it separates course and student in container names", co.Name)
	case strings.HasSuffix(co.Name, "-x"):
		v.errorf(p, "course name %q must not end in -x: its container names (%s-x-STUDENT) would read as another course's", co.Name, co.Name)
	}
	if co.Image != "" {
		v.name(p+".image", co.Image, "image", imageName)
	} else if len(co.Name) <= MaxNameLen && courseName.MatchString(co.Name) && !imageName.MatchString(co.Name) {
		v.errorf(p, "course name %q is not a valid image name; set image: to one (lowercase letters and digits joined by ., _, __ or -)", co.Name)
	}
	v.repo(p+".repo", co.Repo)
	if co.Branch != "" {
		v.branch(p+".branch", co.Branch)
	}
	if co.Path != "" {
		v.relPath(p+".path", co.Path)
	}
	v.limits(p, co.Idle, co.Lingering, co.RetireLimit)
	v.container(p+".container", co.Container)
	v.freeze(p+".freeze", co.Freeze)
	v.warm(p+".warm", co.Warm)
	v.workspace(p, co.Workspace, co.WorkspaceExclude, co.WorkspaceRetention)
	if co.Suspend && co.Archived {
		// Both are allowed (an archived course put on hold keeps its last
		// containers), but the hold wins, which the admin should know.
		v.warnf(p+".suspend", "the course is archived and suspended: its containers are kept until suspend is removed")
	}
	v.ui(p+".ui", co.UI)
	if cr := co.Credentials; cr != nil {
		if cr.PasswordFile != "" && cr.PasswordEnv != "" {
			v.errorf(p+".credentials", "set one of password-file and password-env, not both")
		}
		if (cr.PasswordFile != "" || cr.PasswordEnv != "") && !secureTransport(co.Repo) {
			v.errorf(p+".credentials", "a password is only sent over https or ssh, and repo %q is neither (over plain http it would travel in clear text)", redactURL(co.Repo))
		}
		if (cr.SSHKeyFile == "") != (cr.KnownHostsFile == "") {
			v.errorf(p+".credentials", "ssh-key-file and known-hosts-file go together: host keys are never trusted blindly")
		}
	}
}

func (v *validator) name(p, name, what string, re *regexp.Regexp) {
	switch {
	case len(name) > MaxNameLen:
		v.errorf(p, "%s name %q is too long (%d characters, at most %d)", what, name, len(name), MaxNameLen)
	case !re.MatchString(name):
		if what == "image" {
			v.errorf(p, "invalid image name %q: lowercase letters and digits, joined by ., _, __ or -, with at most one namespace/ before them", name)
		} else {
			v.errorf(p, "invalid course name %q: lowercase letters, digits, -, _ and ., not starting with . or -", name)
		}
	}
}

func (v *validator) repo(p, repo string) {
	if repo == "" {
		v.errorf(p, "missing: the course's git URL or local path")
		return
	}
	if strings.HasPrefix(repo, "/") || repo == "." || scpLike.MatchString(repo) {
		return
	}
	u, err := url.Parse(repo)
	if err != nil {
		// url.Error quotes the whole URL, user information included.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		v.errorf(p, "invalid repo %q: %v", redactURL(repo), err)
		return
	}
	switch u.Scheme {
	case "https", "http", "git", "file":
		if u.User != nil {
			v.errorf(p, "the URL carries user information (%s), which errors, logs, status and history would show — a token given as the user name leaks with it: write repo: %s and give the user name and token in credentials: {username: USER, password-file: FILE} (or password-env)",
				userKind(u.User), redactURL(repo))
		}
	case "ssh":
		// An ssh user is a login name (git), never a secret: keys
		// authenticate. A password is refused all the same.
		if _, hasPassword := u.User.Password(); hasPassword {
			v.errorf(p, "a password in the URL would be shown and logged: write repo: %s and use credentials: {ssh-key-file: FILE, known-hosts-file: FILE}", redactURL(repo))
		}
	default:
		v.errorf(p, "invalid repo %q: want an https://, ssh://, git:// or file:// URL, user@host:path, an absolute path, or . for the config repo", redactURL(repo))
	}
}

// userKind names what a URL's user information holds, without quoting it.
func userKind(u *url.Userinfo) string {
	if _, ok := u.Password(); ok {
		return "a user name and a password"
	}
	return "a user name, which may be a token"
}

// redactURL is raw without the user information it may carry, for
// messages: manifest cannot import gitwatch's RedactURL, and a message
// about a URL must not quote its secret.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil {
		if u.User == nil {
			return raw
		}
		u.User = nil
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	auth, path, slash := strings.Cut(rest, "/")
	if i := strings.LastIndex(auth, "@"); i >= 0 {
		auth = auth[i+1:]
	}
	if slash {
		return scheme + "://" + auth + "/" + path
	}
	return scheme + "://" + auth
}

// maxUID is the largest uid a student may get: the kernel's uids are 32
// bits, but the API and Docker take them as int32, and -1 as uint32
// (4294967295) means "no uid" to the kernel.
const maxUID = 1<<31 - 2

func (v *validator) students(p string, s Students) {
	if s.MinUID < 0 || s.MinUID > maxUID {
		v.errorf(p+".min-uid", "must be between 1 and %d, got %d", maxUID, s.MinUID)
	}
	first, last, ok := s.UIDRange()
	if s.UIDs == "" {
		if floor := s.Floor(); first < floor {
			v.errorf(p+".uids", "the default range %s starts below min-uid %d: set uids to a range of %d or more", DefaultStudentUIDs, floor, floor)
		}
		return
	}
	switch floor := s.Floor(); {
	case !ok:
		v.errorf(p+".uids", "invalid range %q: want FIRST-LAST, e.g. 100000-199999", s.UIDs)
	case first > last:
		v.errorf(p+".uids", "invalid range %q: %d comes after %d", s.UIDs, first, last)
	case first < floor:
		v.errorf(p+".uids", "range %q starts below uid %d, under which are root and the system accounts: start it at %d or more (100000-199999 keeps clear of host accounts)", s.UIDs, floor, floor)
	case last > maxUID:
		v.errorf(p+".uids", "range %q ends above %d, the largest uid the engine takes", s.UIDs, maxUID)
	}
}

func (v *validator) branch(p, b string) {
	if strings.HasPrefix(b, "-") || strings.Contains(b, "..") || strings.ContainsAny(b, " ~^:?*[\\") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") {
		v.errorf(p, "invalid branch name %q", b)
	}
}

func (v *validator) relPath(p, s string) {
	if path.IsAbs(s) || path.Clean(s) != strings.TrimSuffix(s, "/") || s == ".." || strings.HasPrefix(s, "../") {
		v.errorf(p, "invalid path %q: want a clean relative path inside the repo, such as intro or courses/intro", s)
	}
}

func (v *validator) limits(p string, idle, lingering Duration, retire int) {
	if idle != 0 && idle.Std() < 60e9 {
		v.errorf(p+".idle", "%s is too short: at least 1m, or students lose their server while reading", idle)
	}
	if lingering != 0 && idle != 0 && lingering < idle {
		v.warnf(p+".lingering", "%s is shorter than idle (%s): containers will be stopped for age before they are ever idle", lingering, idle)
	}
	if retire < 0 {
		v.errorf(p+".retire-limit", "must be 1 or more, got %d", retire)
	}
}

func (v *validator) container(p string, c Container) {
	if c.Port < 0 || c.Port > 65535 {
		v.errorf(p+".port", "invalid port %d", c.Port)
	}
	if c.Memory != 0 && c.Memory < 6<<20 {
		v.errorf(p+".memory", "%s is below the engine's minimum of 6m", c.Memory)
	}
	if c.CPUs < 0 {
		v.errorf(p+".cpus", "must not be negative")
	}
	for i, arg := range c.Command {
		v.placeholders(fmt.Sprintf("%s.command[%d]", p, i), arg)
	}
	if c.Command != nil && len(c.Command) == 0 {
		v.errorf(p+".command", "must not be empty")
	}
	for i, m := range c.Mounts {
		q := fmt.Sprintf("%s.mounts[%d]", p, i)
		v.placeholders(q, m)
		parts := strings.Split(m, ":")
		if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
			v.errorf(q, "invalid mount %q: want HOST:CONTAINER or HOST:CONTAINER:ro", m)
			continue
		}
		if !strings.HasPrefix(parts[0], "/") && !strings.HasPrefix(parts[0], "{root}") {
			v.errorf(q, "mount source %q must be an absolute host path or start with {root}", parts[0])
		}
		if !strings.HasPrefix(parts[1], "/") {
			v.errorf(q, "mount target %q must be an absolute path in the container", parts[1])
		}
		if err := CheckMount(parts[0], parts[1]); err != nil {
			v.errorf(q, "mount %q: %v", m, err)
		}
	}
	for _, k := range sortedKeys(c.Env) {
		if !envName.MatchString(k) {
			v.errorf(p+".env."+k, "invalid environment variable name %q", k)
		}
		v.placeholders(p+".env."+k, c.Env[k])
	}
	v.placeholders(p+".token", c.Token)
	v.placeholders(p+".user", c.User)
	if c.User != "" && !userSpec.MatchString(placeholder.ReplaceAllString(c.User, "0")) {
		v.errorf(p+".user", "invalid user %q: want a name or a number, optionally :group (e.g. root, 0, 1000:100, {uid})", c.User)
	}
	for i, arg := range c.Entrypoint {
		v.placeholders(fmt.Sprintf("%s.entrypoint[%d]", p, i), arg)
	}
	if len(c.Entrypoint) > 0 && c.Entrypoint[0] == "" {
		v.errorf(p+".entrypoint[0]", "must name a program (leave entrypoint out for none)")
	}
	if c.Preset != "" && !slices.Contains(Presets, c.Preset) {
		v.errorf(p+".preset", "unknown preset %q (known: %s)", c.Preset, strings.Join(Presets, ", "))
	}
	v.constraints(p+".constraints", c.Constraints)
}

// engineSockets are the sockets of container engines: whoever can open one
// is root on the host, so no student container may see one.
var engineSockets = []string{
	"/var/run/docker.sock", "/run/docker.sock",
	"/var/run/podman/podman.sock", "/run/podman/podman.sock",
	"/var/run/containerd/containerd.sock", "/run/containerd/containerd.sock",
}

// hostOnly are host directories no student container may see, nor one
// inside or above them: the engines' data (every container's files and
// volumes, and their configuration) and the kernel's devices and process
// and system views.
var hostOnly = []string{"/var/lib/docker", "/var/lib/containers", "/var/lib/containerd", "/dev", "/proc", "/sys"}

// CheckMount says why a mount (its host source and container target, as
// written in courses.yaml or once expanded) is clearly wrong: a source or
// target with a .. component, in the template or once placeholders are
// filled in (whatever their values); a source that is /, an engine socket,
// or a directory holding one (/run, /var/run, a user's /run/user/UID); a
// source in, or above, a hostOnly directory. Admins may mount what they
// like otherwise. It reads the path as written: the spawn checks again
// with symbolic links resolved.
func CheckMount(src, dst string) error {
	if msg := unsafeMount(src, dst); msg != "" {
		return errors.New(msg)
	}
	return nil
}

func unsafeMount(src, dst string) string {
	for _, side := range []struct{ what, p string }{{"source", src}, {"target", dst}} {
		for _, x := range expansions(side.p) {
			if slices.Contains(strings.Split(x, "/"), "..") {
				return fmt.Sprintf("the %s has a .. component (%q): it may lead anywhere", side.what, x)
			}
		}
	}
	for _, x := range expansions(src) {
		c := path.Clean(x)
		if !path.IsAbs(c) {
			continue // reported as not absolute
		}
		switch base := path.Base(c); {
		case c == "/":
			return "the source is the host's root directory"
		case base == "docker.sock" || base == "podman.sock" || base == "containerd.sock":
			return fmt.Sprintf("the source %s is a container engine's socket: whoever opens it is root on the host", c)
		case holdsSocket(c):
			return fmt.Sprintf("the source %s holds a container engine's socket: whoever opens it is root on the host", c)
		}
		for _, d := range hostOnly {
			if c == d || strings.HasPrefix(c, d+"/") || strings.HasPrefix(d, c+"/") {
				return fmt.Sprintf("the source %s reaches %s, which no student container may see (the engine's data, or the host's devices, processes or system)", c, d)
			}
		}
	}
	return ""
}

// holdsSocket reports whether dir is a directory an engine socket lives in
// (or above one): /var, /run, /var/run, /run/user, /run/user/UID...
func holdsSocket(dir string) bool {
	for _, s := range engineSockets {
		if strings.HasPrefix(s, dir+"/") {
			return true
		}
	}
	// Rootless engines keep theirs under /run/user/UID.
	parts := strings.Split(strings.TrimPrefix(dir, "/"), "/")
	return len(parts) >= 2 && len(parts) <= 4 && parts[0] == "run" && parts[1] == "user" &&
		(len(parts) < 4 || parts[3] == "podman" || parts[3] == "docker")
}

// expansions returns s as written and with its placeholders filled in:
// with typical values, and with empty ones (the worst case for ..).
func expansions(s string) []string {
	if !strings.Contains(s, "{") {
		return []string{s}
	}
	typical := strings.NewReplacer("{root}", "/var/lib/nbh-sync", "{course}", "course", "{student}", "student", "{uid}", "1000", "{port}", "30000")
	empty := strings.NewReplacer("{root}", "", "{course}", "", "{student}", "", "{uid}", "", "{port}", "")
	return []string{s, typical.Replace(s), empty.Replace(s)}
}

// secureTransport reports whether a repo is reached over a channel that
// protects a password: https, ssh (ssh:// or user@host:path), or plain
// http to this very host (a loopback address), where nothing travels on a
// network.
func secureTransport(repo string) bool {
	if scpLike.MatchString(repo) && !strings.Contains(repo, "://") {
		return true
	}
	u, err := url.Parse(repo)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "https", "ssh":
		return true
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	return false
}

func (v *validator) placeholders(p, s string) {
	for _, m := range placeholder.FindAllString(s, -1) {
		if !slices.Contains(Placeholders, m[1:len(m)-1]) {
			v.errorf(p, "unknown placeholder %s (known: {root}, {course}, {student}, {uid}, {port}, {prefix})", m)
		}
	}
	v.swarmPort(p, s)
}

func (v *validator) freeze(p string, fs []Freeze) {
	for i, f := range fs {
		q := fmt.Sprintf("%s[%d]", p, i)
		if f.Cron == "" {
			v.errorf(q+".cron", "missing: when the window starts, as a cron expression")
		} else {
			v.cronExpr(q+".cron", f.Cron)
		}
		if f.For <= 0 {
			v.errorf(q+".for", "missing: how long the window lasts, e.g. 4h")
		}
	}
}

func (v *validator) warm(p string, ws []Warm) {
	for i, w := range ws {
		q := fmt.Sprintf("%s[%d]", p, i)
		if w.Cron == "" {
			v.errorf(q+".cron", "missing: when the window starts, as a cron expression")
		} else {
			v.cronExpr(q+".cron", w.Cron)
		}
		if w.For <= 0 {
			v.errorf(q+".for", "missing: how long the window lasts, e.g. 2h")
		}
		if w.Students == "" {
			v.errorf(q+".students", "missing: who is expected, recent(30d) or file:PATH")
		} else if st, err := ParseWarmStudents(w.Students); err != nil {
			v.errorf(q+".students", "%v", err)
		} else if st.File != "" {
			v.relPath(q+".students", st.File)
		}
		if w.Max < 0 {
			v.errorf(q+".max", "must not be negative")
		}
	}
}

// workspace checks the workspace settings of defaults: or a course. The
// exclude patterns follow package workspace's syntax: path.Match globs, a
// trailing slash for folders, a leading one to anchor at the course's top.
func (v *validator) workspace(p, mode string, exclude []string, retention Duration) {
	if mode != "" && !slices.Contains(WorkspaceModes, mode) {
		v.errorf(p+".workspace", "unknown workspace mode %q (known: %s)", mode, strings.Join(WorkspaceModes, ", "))
	}
	for i, pat := range exclude {
		q := fmt.Sprintf("%s.workspace-exclude[%d]", p, i)
		glob := strings.Trim(strings.TrimSpace(pat), "/")
		if glob == "" {
			v.errorf(q, "empty pattern")
			continue
		}
		if _, err := path.Match(glob, ""); err != nil {
			v.errorf(q, "invalid pattern %q: %v", pat, err)
		}
		if slices.Contains(strings.Split(glob, "/"), "..") {
			v.errorf(q, "invalid pattern %q: a .. component never matches a course path", pat)
		}
	}
	if retention < 0 {
		v.errorf(p+".workspace-retention", "must not be negative")
	} else if retention != 0 && retention.Std() < time.Hour {
		v.errorf(p+".workspace-retention", "%s is too short: at least 1h, so that a student can take back what a merge replaced", retention)
	}
}

func (v *validator) cronExpr(p, expr string) {
	if expr == "" {
		return
	}
	if _, err := CronParser.Parse(expr); err != nil {
		v.errorf(p, "invalid cron expression %q: %v", expr, err)
	}
}

func (v *validator) image(p, name string, img Image) {
	v.name(p, name, "image", imageName)
	if img.Dockerfile != "" {
		v.relPath(p+".dockerfile", img.Dockerfile)
	}
	for _, k := range sortedKeys(img.BuildArgs) {
		if !envName.MatchString(k) {
			v.errorf(p+".build-args."+k, "invalid build argument name %q", k)
		}
	}
	if img.Smoke != nil && (len(img.Smoke) == 0 || img.Smoke[0] == "") {
		v.errorf(p+".smoke", "must name a command")
	}
	if img.Pin != "" && !hexKey.MatchString(img.Pin) {
		v.errorf(p+".pin", "invalid build key %q: want the hex digest shown by nbh-sync status (12 to 64 characters)", img.Pin)
	}
}

// CheckImages resolves every image of the site against src (its lookup
// order) and reports what the config repo gets wrong, as errors at the
// course that uses the image (or at its images: entry): an image nobody can
// build, a Dockerfile named but missing; and in the config repo's
// Dockerfiles, at their lines, a FROM cycle and the lint (dockerfile.Lint).
// What is a course's own business — its repo has no Dockerfile yet, or is
// not fetched — is a warning: it fails that image only, and must not block
// the site.
func (c *Config) CheckImages(src Sources) []Problem {
	v := &validator{walker: &walker{file: c.file, pos: c.pos, bad: map[string]bool{}}, c: c}
	add := func(path string, warning bool, msg string) { v.at(path, warning, "%s", msg) }
	names := c.ImageNames()
	bases := map[string][]string{}
	froms := map[string][]dockerfile.From{}
	files := map[string]string{} // image → its Dockerfile, for messages
	data := map[string][]byte{}  // image → its Dockerfile's content
	for _, name := range names {
		where := "images." + name
		if _, ok := c.Images[name]; !ok {
			// At the course's image: line when it has one: that is the
			// line to change; else at the course, named after its image.
			where = "courses." + c.CoursesUsing(name)[0]
			if _, written := c.pos[where+".image"]; written {
				where += ".image"
			}
		}
		s, err := c.ResolveImage(name, src)
		var nd *NoDockerfileError
		switch {
		case errors.As(err, &nd) && nd.CourseContent():
			add(where, true, err.Error()+"; the image fails until its course has one")
		case err != nil:
			add(where, false, err.Error())
		case s.Assumed:
			add(where, true, fmt.Sprintf("image %s: its Dockerfile is looked up in course %s once its repo is fetched (not checked)", name, name))
		}
		if err != nil || s.Kind == FromCourse {
			continue
		}
		df, err := src.ReadConfigFile(s.Dockerfile)
		if err != nil {
			add(where, false, fmt.Sprintf("image %s: read %s: %v", name, s.Dockerfile, err))
			continue
		}
		data[name] = df
		files[name] = path.Join(path.Dir(c.file), s.Dockerfile)
		for _, f := range dockerfile.Froms(df) {
			if b := dockerfile.LocalName(f.Ref); slices.Contains(names, b) {
				bases[name] = append(bases[name], b)
				froms[name] = append(froms[name], f)
			}
		}
	}
	// The lint of the config repo's own Dockerfiles, knowing which bases
	// the site builds (a course's Dockerfile is linted before its build).
	base := dockerfile.SiteBases(names, func(image string) ([]byte, bool) {
		d, ok := data[image]
		return d, ok
	})
	for _, name := range names {
		if d, ok := data[name]; ok {
			for _, f := range dockerfile.Lint(d, base) {
				v.probs = append(v.probs, Problem{File: files[name], Line: f.Line, Message: f.Message, Warning: f.Warning})
			}
		}
	}
	_, cycles := OrderImages(names, bases)
	for _, cyc := range cycles {
		// Only a cycle wholly in the config repo is the config's fault;
		// one through a course's Dockerfile fails those images' builds.
		first, next := cyc[0], cyc[1]
		i := slices.Index(bases[first], next)
		if i < 0 {
			continue
		}
		v.probs = append(v.probs, Problem{File: files[first], Line: froms[first][i].Line,
			Message: fmt.Sprintf("FROM %s: a cycle of base images: %s", froms[first][i].Ref, strings.Join(cyc, " → "))})
	}
	return v.probs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
