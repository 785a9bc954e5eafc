package containers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/preset"
	"github.com/nbhosting/nbh-sync/rootdir"
)

// SpawnState says what Spawn had to do.
type SpawnState string

// The outcomes of a Spawn.
const (
	Existing SpawnState = "existing" // it was running: used as is
	Started  SpawnState = "started"  // it was stopped, on the current image: started
	Created  SpawnState = "created"  // it was missing or stale: created
)

// SpawnOptions are the per-site inputs of a spawn.
type SpawnOptions struct {
	// Root is the data directory that {root} stands for (absolute).
	Root string
	// UID is the uid the server runs as ({uid}); empty means the uid of
	// the host account named like the student, else one from UIDs.
	UID string
	// Prepare, when set, runs right before a stopped or missing server is
	// started — never while it runs — holding the student's lock, with
	// the uid and gid the server runs as ("" when unknown): the site makes
	// the student's workspace there, owned by them. An error fails the
	// spawn.
	Prepare func(ctx context.Context, uid, gid string) error
	// MinUID is the lowest uid a server may run as, whatever gave it (UID,
	// a host account, a container's label, UIDs): manifest.DefaultMinUID
	// when 0. Below it are root and the system accounts, whose files and
	// processes on the host a student's server would own.
	MinUID int
	// UIDs gives a uid to a student with no host account (and no UID);
	// nil leaves such a student without one.
	UIDs UIDAllocator
	// NoAdopt refuses (ErrNotManaged) an unlabelled container of the
	// student's name, which Spawn otherwise takes for nbhosting's and uses
	// (engine.adopt: false).
	NoAdopt bool
	// Warm starts the server for a student who has not asked for it (a
	// warm window): it is not handed out, so it neither counts as a visit
	// nor keeps a pass planned before it from acting.
	Warm bool
}

// prepare runs opts.Prepare, if any.
func (o SpawnOptions) prepare(ctx context.Context, uid, gid string) error {
	if o.Prepare == nil {
		return nil
	}
	return o.Prepare(ctx, uid, gid)
}

// UIDAllocator keeps one stable uid per student (package uids).
type UIDAllocator interface {
	// UID returns student's uid, allocating one on first use.
	UID(student string) (int, error)
}

func (o SpawnOptions) minUID() int { return cmp.Or(o.MinUID, manifest.DefaultMinUID) }

// uidFrom is a uid to run a server as and where it came from, for
// messages.
type uidFrom struct{ uid, from string }

// Spawned is the result of a Spawn, ready for JSON.
type Spawned struct {
	Name  string     `json:"name"`
	ID    string     `json:"id"`
	State SpawnState `json:"state"`
	Port  int        `json:"port"`
	URL   string     `json:"url"`
	// Host is the node the server runs on, when the engine places
	// containers on several hosts (Swarm).
	Host string `json:"host,omitempty"`
	// BasePath is the server's URL prefix (the path of URL) and UID the
	// uid it runs as ("" if unknown): what token placeholders need.
	BasePath string `json:"-"`
	UID      string `json:"-"`
	// Token is the server's Jupyter token: a browser opens URL?token=…
	// (after which the server keeps a login cookie). Empty when the
	// server runs without one.
	Token string `json:"token,omitempty"`
}

// TokenSource derives the Jupyter token of a student's container when the
// course sets none (package token).
type TokenSource interface {
	For(course, student string) (string, error)
}

// TokenEnv is the environment variable Jupyter reads its token from (both
// jupyter_server and the classic Notebook).
const TokenEnv = "JUPYTER_TOKEN"

// Token returns the token of the container of course and student made
// with settings cc: cc.Token with its placeholders expanded when set, else
// the one m.Tokens derives, else none. The spawn that makes the container
// and the pass that probes it both ask here, so they cannot disagree.
func (m *Manager) Token(cc manifest.Container, v Vars) (string, error) {
	if cc.Token != "" {
		return v.Expand(cc.Token), nil
	}
	if m.Tokens == nil {
		return "", nil
	}
	return m.Tokens.For(v.Course, v.Student)
}

// ServerURL returns the base URL of a server published on hostIP:port that
// serves under base (a path with slashes at both ends).
func ServerURL(hostIP string, port int, base string) string {
	return "http://" + net.JoinHostPort(hostIP, strconv.Itoa(port)) + base
}

// URL returns the container's server URL on hostIP, under its own prefix.
func (c Container) URL(hostIP string) string { return ServerURL(hostIP, c.Port, c.BasePath) }

// basePathOf is the prefix a server made from cc serves under: the stable
// prefix when the command uses {prefix}, else /{port}/.
func basePathOf(cc manifest.Container, v Vars) string {
	if slices.ContainsFunc(cc.Command, func(a string) bool { return strings.Contains(a, "{prefix}") }) {
		return naming.Prefix(v.Course, v.Student)
	}
	return naming.BasePath(v.Port)
}

// maxAttempts bounds the re-reads after losing a race (a name conflict with
// another process, a port taken between choice and bind).
const maxAttempts = 8

// pause waits a little longer at each attempt (10ms, 20ms, ... 640ms).
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(10 * time.Millisecond << min(attempt, 6))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Spawn makes sure the student's container of course co runs and answers,
// and returns it: a running container is used as is; a stopped one
// on the current image is started; a stopped stale one is removed and made
// again; a missing one is created from the image :latest resolves to now.
//
// Each state of the container has its step (spawning's methods): missing,
// running, stopped and startable, stopped and stale. A step that replaces
// the container, or loses a race, has the container observed again; what
// differs between engines is in their Capabilities, not here.
//
// Concurrent spawns of one student in this process are serialized by the
// shared Locks; across processes, the engine's name uniqueness decides and
// the loser uses the winner's container.
func (m *Manager) Spawn(ctx context.Context, co manifest.Course, student string, opts SpawnOptions) (Spawned, error) {
	fail := func(err error) (Spawned, error) {
		return Spawned{}, fmt.Errorf("spawn %s for %s: %w", co.Name, student, err)
	}
	switch {
	case co.Name == "":
		return fail(manifest.ErrUnknownCourse)
	case co.Archived:
		return fail(manifest.ErrArchived)
	case !filepath.IsAbs(opts.Root):
		return fail(fmt.Errorf("root %q is not an absolute path", opts.Root))
	}
	if err := naming.CheckStudent(student); err != nil {
		return fail(err)
	}
	unlock, err := m.locks.Lock(ctx, co.Name, student)
	if err != nil {
		return fail(err)
	}
	defer unlock()

	img := co.ImageOf()
	cur, err := m.latest(ctx, []string{img})
	if err != nil {
		return fail(err)
	}
	im, ok := cur[img]
	if !ok {
		return fail(fmt.Errorf("%w: no image %s:latest", ErrImageNotBuilt, img))
	}
	// Only what this site built runs as a student's server: an image of
	// the same name from elsewhere runs someone else's code with the
	// student's files mounted.
	if err := BuiltHere(img, im); err != nil {
		return fail(err)
	}
	sp := &spawning{m: m, co: co, student: student, opts: opts, imageID: im.ID,
		want: uidFrom{opts.UID, "given to spawn"}}
	var res Spawned
	for attempt := 0; ; attempt++ {
		if attempt == maxAttempts {
			return fail(fmt.Errorf("gave up after %d attempts racing other writers", maxAttempts))
		}
		var again bool
		c, err := m.Get(ctx, co.Name, student)
		if err == nil {
			err = sp.refused(c)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			res, again, err = sp.missing(ctx, attempt)
		case err != nil:
		case c.State == Running:
			res, err = sp.running(ctx, c)
		case sp.startable(c):
			res, again, err = sp.stopped(ctx, c)
		default:
			again, err = true, sp.stale(ctx, c)
		}
		if err != nil {
			return fail(err)
		}
		if !again {
			break
		}
	}
	if res, err = sp.ready(ctx, res); err != nil {
		return fail(err)
	}
	if !opts.Warm {
		m.locks.MarkHandedOut(co.Name, student, m.now())
	}
	return res, nil
}

// spawning is one Spawn under way, its student's lock held: what it makes
// a container from, and the uid it makes one with.
type spawning struct {
	m       *Manager
	co      manifest.Course
	student string
	opts    SpawnOptions
	imageID string // what the course's :latest resolves to now
	// want is the uid to make the container with: the one given, else
	// that of the container it replaces (recorded in its label: a uid the
	// API gave has no host account to be found again by).
	want uidFrom
}

// refused says why the student's container c is never handed out: an
// unlabelled one where the site adopts none, or one running below the
// site's uid floor (made before the floor, or by hand).
func (sp *spawning) refused(c Container) error {
	if c.Adopted && sp.opts.NoAdopt {
		return fmt.Errorf("container %s: %w: it carries none of nbh-sync's labels and courses.yaml says engine.adopt: false; remove or rename it (it may be another tool's), or set engine.adopt: true if nbhosting made it", c.Name, ErrNotManaged)
	}
	if c.UID != "" {
		if err := checkUID(c.UID, "the "+LabelUID+" label of container "+c.Name, sp.opts.minUID()); err != nil {
			return fmt.Errorf("%w; remove the container (docker rm -f %s) so that it is made again with an allowed uid", err, c.Name)
		}
	}
	return nil
}

// missing creates the container. again is true when another process made
// it meanwhile: the next attempt uses theirs.
func (sp *spawning) missing(ctx context.Context, attempt int) (res Spawned, again bool, err error) {
	id, port, host, uid, err := sp.m.create(ctx, sp.co, sp.student, sp.imageID, sp.opts, sp.want)
	if errors.Is(err, ErrConflict) {
		// The engine reserves the name before the container can be
		// inspected, so give the other process a moment.
		return Spawned{}, true, pause(ctx, attempt)
	}
	if err != nil {
		return Spawned{}, false, err
	}
	return Spawned{ID: id, State: Created, Port: port, Host: host, UID: uid,
		BasePath: basePathOf(sp.co.Container, Vars{Course: sp.co.Name, Student: sp.student, Port: port})}, false, nil
}

// running uses the running container c as it is.
func (sp *spawning) running(ctx context.Context, c Container) (Spawned, error) {
	if sp.m.Capabilities().PicksHostPort && c.Port == 0 {
		// Its task is still being scheduled or started.
		var err error
		if c, err = sp.m.awaitStarted(ctx, c.Name); err != nil {
			return Spawned{}, err
		}
	}
	return Spawned{ID: c.ID, State: Existing, Port: c.Port, Host: c.Host, BasePath: c.BasePath, UID: c.UID}, nil
}

// startable reports whether the stopped container c can be started as it
// is: it is on the current image, was made with the course's container:
// settings as they are (or did not record them: adopted, or made before
// the label), and a port it publishes, or the one the engine picks at
// start, reaches it.
func (sp *spawning) startable(c Container) bool {
	return c.ImageID == sp.imageID && !c.SettingsDiffer(SettingsKey(sp.co.Container)) &&
		(c.Port != 0 || sp.m.Capabilities().PicksHostPort)
}

// stopped starts the stopped container c. again is true when it could not
// be started where it was and was removed: the next attempt makes it anew.
func (sp *spawning) stopped(ctx context.Context, c Container) (res Spawned, again bool, err error) {
	if err := sp.opts.prepare(ctx, c.UID, c.UID); err != nil {
		return Spawned{}, false, err
	}
	if err := sp.m.eng.Start(ctx, c.ID); err != nil {
		if errors.Is(err, ErrPortInUse) || errors.Is(err, ErrNotFound) {
			// Its port went to someone else while it slept (or it
			// vanished): make it again, the student's files are on
			// the host.
			sp.m.log.InfoContext(ctx, "recreating container", "container", c.Name, "reason", err.Error())
			return Spawned{}, true, sp.remove(ctx, c)
		}
		return Spawned{}, false, err
	}
	if sp.m.Capabilities().PicksHostPort {
		// A new port (and maybe node) at every start.
		if c, err = sp.m.awaitStarted(ctx, c.Name); err != nil {
			return Spawned{}, false, err
		}
	}
	return Spawned{ID: c.ID, State: Started, Port: c.Port, Host: c.Host, BasePath: c.BasePath, UID: c.UID}, false, nil
}

// stale removes the stopped container c, on an old image or with no
// published port to reach it by (made by nbhosting), to be made again: the
// student's files are on the host.
func (sp *spawning) stale(ctx context.Context, c Container) error {
	sp.m.log.InfoContext(ctx, "removing stopped container to recreate it", "container", c.Name, "image", c.ImageID, "current", sp.imageID, "port", c.Port)
	return sp.remove(ctx, c)
}

// remove removes c, to be made again with its uid.
func (sp *spawning) remove(ctx context.Context, c Container) error {
	if err := sp.m.eng.Remove(ctx, c.ID); err != nil {
		return err
	}
	sp.want = keepUID(sp.want, c)
	return nil
}

// ready completes res, the running container, with its name, URL and
// token, once its server answers.
func (sp *spawning) ready(ctx context.Context, res Spawned) (Spawned, error) {
	m := sp.m
	res.Name = naming.Container(sp.co.Name, sp.student)
	if res.Port == 0 {
		return res, fmt.Errorf("container %s publishes no port", res.Name)
	}
	res.URL = ServerURL(cmp.Or(res.Host, m.HostIP), res.Port, res.BasePath)
	v := Vars{Root: sp.opts.Root, Course: sp.co.Name, Student: sp.student, UID: res.UID, Port: res.Port}
	var err error
	if res.Token, err = m.Token(sp.co.Container, v); err != nil {
		return res, err
	}
	if m.Capabilities().PicksHostPort {
		res, err = m.awaitServing(ctx, res)
	} else {
		err = WaitReady(ctx, res.URL, m.ReadyTimeout)
	}
	if err != nil {
		return res, fmt.Errorf("container %s: %w", res.Name, err)
	}
	return res, nil
}

// create makes and starts the container on a free host port, choosing
// another port if the chosen one is taken before the engine binds it. On an
// engine that picks the port (and node) itself, it reads them back once the
// container runs.
func (m *Manager) create(ctx context.Context, co manifest.Course, student, imageID string, opts SpawnOptions, want uidFrom) (id string, port int, host, uid string, err error) {
	uid, gid, err := resolveUID(co.Container, student, want, opts)
	if err != nil {
		return "", 0, "", "", err
	}
	if err := workDir(opts.Root, co.Name, student, uid, gid); err != nil {
		return "", 0, "", "", err
	}
	if err := opts.prepare(ctx, uid, gid); err != nil {
		return "", 0, "", "", err
	}
	var pre preset.Additions
	if co.Container.Preset == manifest.PresetNbhosting {
		if pre, err = preset.Nbhosting(rootdir.Course(opts.Root, co.Name)); err != nil {
			return "", 0, "", "", fmt.Errorf("preset %s: %w", co.Container.Preset, err)
		}
		for _, n := range pre.Notes {
			m.log.WarnContext(ctx, "preset: left out", "course", co.Name, "preset", co.Container.Preset, "note", n)
		}
	}
	picks := m.Capabilities().PicksHostPort
	for try := 0; ; try++ {
		port := 0 // the engine picks it, at each start
		if !picks {
			if port, err = freePort(m.HostIP); err != nil {
				return "", 0, "", "", err
			}
		}
		v := Vars{Root: opts.Root, Course: co.Name, Student: student, UID: uid, Port: port}
		tok, err := m.Token(co.Container, v)
		if err != nil {
			return "", 0, "", "", err
		}
		if picks && tok == "" {
			// An engine that picks the port publishes it on every
			// address of the node (Swarm cannot bind one): the token
			// is all that keeps the network out.
			return "", 0, "", "", errors.New("no Jupyter token for the server: its engine (swarm) opens its port on every address of its node, so a server without one is never made")
		}
		spec := m.spec(co, student, imageID, v, tok, pre)
		if picks {
			delete(spec.Labels, LabelPort)
		}
		if err := checkBinds(spec.Binds); err != nil {
			return "", 0, "", "", err
		}
		id, err := m.eng.Create(ctx, spec)
		if err != nil {
			return "", 0, "", "", err
		}
		err = m.eng.Start(ctx, id)
		if err == nil && picks {
			var c Container
			if c, err = m.awaitStarted(ctx, spec.Name); err == nil {
				m.log.InfoContext(ctx, "created service", "container", spec.Name, "image", imageID, "host", c.Host, "port", c.Port)
				return c.ID, c.Port, c.Host, uid, nil
			}
		}
		if err == nil {
			m.log.InfoContext(ctx, "created container", "container", spec.Name, "image", imageID, "port", port)
			return id, port, "", uid, nil
		}
		// Never leave a half-made container behind to be mistaken for a
		// stopped one.
		if rerr := m.eng.Remove(context.WithoutCancel(ctx), id); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if !errors.Is(err, ErrPortInUse) || try+1 >= maxAttempts {
			return "", 0, "", "", err
		}
	}
}

// awaitServing waits, within ReadyTimeout, until the server of res answers.
// On an engine that picks ports, a task that fails (its port taken by a
// process the engine did not know of, say) is restarted on another port
// or node: every few seconds without an answer, the container is observed
// again and the wait follows it.
func (m *Manager) awaitServing(ctx context.Context, res Spawned) (Spawned, error) {
	ctx, cancel := context.WithTimeout(ctx, m.ReadyTimeout)
	defer cancel()
	for {
		err := WaitReady(ctx, res.URL, 5*time.Second)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			return res, fmt.Errorf("%w (waited %s)", err, m.ReadyTimeout)
		}
		c, err := m.awaitStarted(ctx, res.Name)
		if err != nil {
			return res, err
		}
		if c.Port != res.Port || c.Host != res.Host {
			m.log.InfoContext(ctx, "server moved while starting", "container", res.Name, "host", c.Host, "port", c.Port)
		}
		res.ID, res.Port, res.Host = c.ID, c.Port, c.Host
		res.URL = ServerURL(cmp.Or(c.Host, m.HostIP), c.Port, res.BasePath)
	}
}

// awaitStarted waits, within ReadyTimeout, until the engine reports the
// container running with a published port, and returns it.
func (m *Manager) awaitStarted(ctx context.Context, name string) (Container, error) {
	ctx, cancel := context.WithTimeout(ctx, m.ReadyTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		r, err := m.eng.Inspect(ctx, name)
		if err != nil {
			return Container{}, err
		}
		c, ok := classify(r, m.now())
		if !ok {
			return Container{}, fmt.Errorf("container %s: %w", name, ErrNotManaged)
		}
		if c.State == Running && c.Port != 0 {
			return c, nil
		}
		if err := pause(ctx, attempt); err != nil {
			return Container{}, fmt.Errorf("container %s: %w: no published port yet (%v)", name, ErrTimeout, err)
		}
	}
}

// spec is the container to create: the course's settings with v expanded,
// the token in the environment, and what a preset adds (mounts the
// settings already make at the same place are the settings').
func (m *Manager) spec(co manifest.Course, student, imageID string, v Vars, token string, pre preset.Additions) Spec {
	cc := co.Container
	s := Spec{
		Name:  naming.Container(co.Name, student),
		Image: imageID,
		Labels: map[string]string{
			LabelCourse: co.Name, LabelStudent: student, LabelManagedBy: ManagedBy,
			LabelPort: strconv.Itoa(v.Port), LabelBasePath: basePathOf(cc, v),
			LabelSettings: SettingsKey(cc),
		},
		Port:     cc.Port,
		HostIP:   m.HostIP,
		HostPort: v.Port,
		Memory:   int64(cc.Memory),
		CPUs:     cc.CPUs,

		Constraints: cc.Constraints,
	}
	if m.Site != "" {
		s.Labels[LabelSite] = m.Site
	}
	if s.Port == 0 {
		s.Port = manifest.DefaultPort
	}
	if v.UID != "" {
		s.Labels[LabelUID] = v.UID
	}
	s.User = v.Expand(cmp.Or(cc.User, manifest.DefaultUser))
	// Never nil: an empty entrypoint is "none", not "the image's".
	s.Entrypoint = []string{}
	for _, a := range cc.Entrypoint {
		s.Entrypoint = append(s.Entrypoint, v.Expand(a))
	}
	for _, a := range cc.Command {
		s.Cmd = append(s.Cmd, v.Expand(a))
	}
	s.Cmd = withUI(s.Cmd, co.UI)
	targets := map[string]bool{}
	for _, b := range cc.Mounts {
		b = v.Expand(b)
		s.Binds = append(s.Binds, b)
		targets[mountTarget(b)] = true
	}
	for _, b := range pre.Binds {
		if !targets[mountTarget(b)] {
			s.Binds = append(s.Binds, b)
		}
	}
	env := maps.Clone(pre.Env)
	if env == nil {
		env = map[string]string{}
	}
	if token != "" {
		env[TokenEnv] = token
	}
	for k, val := range cc.Env {
		env[k] = v.Expand(val)
	}
	for k, val := range env {
		s.Env = append(s.Env, k+"="+val)
	}
	slices.Sort(s.Env)
	return s
}

// mountTarget is the container side of HOST:CONTAINER[:MODE].
func mountTarget(bind string) string {
	parts := strings.Split(bind, ":")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// checkBinds refuses, once placeholders are filled in, the mounts that
// validation refuses as written (an engine socket, /, ..): the values
// ({root} above all) are only known here. It checks each source again with
// its symbolic links resolved, as the engine will: a link in the path (one
// a host user who shares a student's uid plants in the student's folder,
// say) to /var/run or /dev would otherwise pass.
func checkBinds(binds []string) error {
	for _, b := range binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			return fmt.Errorf("mount %q: want HOST:CONTAINER[:ro]", b)
		}
		if err := manifest.CheckMount(parts[0], parts[1]); err != nil {
			return fmt.Errorf("mount %q: %w", b, err)
		}
		real, err := resolvePath(parts[0])
		if err != nil {
			return fmt.Errorf("mount %q: resolve its source: %w", b, err)
		}
		if real == filepath.Clean(parts[0]) {
			continue
		}
		if err := manifest.CheckMount(real, parts[1]); err != nil {
			return fmt.Errorf("mount %q: its source leads, through symbolic links, to %s: %w", b, real, err)
		}
	}
	return nil
}

// resolvePath returns p with the symbolic links of its longest existing
// prefix resolved; the missing rest (the engine creates it) is appended as
// is.
func resolvePath(p string) (string, error) {
	have, rest := filepath.Clean(p), ""
	for {
		if _, err := os.Lstat(have); err == nil {
			break
		}
		parent := filepath.Dir(have)
		if parent == have {
			break
		}
		rest = filepath.Join(filepath.Base(have), rest)
		have = parent
	}
	real, err := filepath.EvalSymlinks(have)
	if err != nil {
		return "", err
	}
	return filepath.Join(real, rest), nil
}

// withUI adds to a command the page a course's ui lands on (lab: /lab,
// classic: /tree; auto adds nothing), unless the command names
// default_url itself: the admin's own word wins, and Jupyter refuses a
// default_url given twice.
func withUI(cmd []string, ui manifest.UI) []string {
	u := ui.DefaultURL()
	if u == "" || slices.ContainsFunc(cmd, func(a string) bool { return strings.Contains(a, "default_url") }) {
		return cmd
	}
	return append(cmd, "--ServerApp.default_url="+u)
}

// Vars are the values of the placeholders of container settings.
type Vars struct {
	Root, Course, Student, UID string
	Port                       int
}

// Expand replaces {root}, {course}, {student}, {uid}, {port} and {prefix}
// in s.
func (v Vars) Expand(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	return strings.NewReplacer("{root}", v.Root, "{course}", v.Course, "{student}", v.Student,
		"{uid}", v.UID, "{port}", strconv.Itoa(v.Port), "{prefix}", naming.Prefix(v.Course, v.Student)).Replace(s)
}

// keepUID is the uid to make a container again with, in place of c: the
// one wanted already (given to spawn) if any, else c's own.
func keepUID(want uidFrom, c Container) uidFrom {
	if want.uid != "" || c.UID == "" {
		return want
	}
	return uidFrom{c.UID, "the " + LabelUID + " label of the container it replaces, " + c.Name}
}

// resolveUID returns the uid (and gid) a student's server runs as: the one
// wanted (given, or carried over from the container it replaces), else that
// of the host account named like the student, else the one opts.UIDs keeps
// for the student. Whatever its source, a uid below opts' floor is refused.
// It fails too when the settings need {uid} and no source has one.
func resolveUID(cc manifest.Container, student string, want uidFrom, opts SpawnOptions) (uid, gid string, err error) {
	floor := opts.minUID()
	if want.uid != "" {
		if err := checkUID(want.uid, want.from, floor); err != nil {
			return "", "", err
		}
		return want.uid, want.uid, nil
	}
	u, lerr := user.Lookup(student)
	if lerr == nil {
		if err := checkUID(u.Uid, "the host account named "+student, floor); err != nil {
			return "", "", err
		}
		return u.Uid, u.Gid, nil
	}
	if opts.UIDs != nil {
		n, err := opts.UIDs.UID(student)
		if err != nil {
			return "", "", fmt.Errorf("allocate a uid for %s: %w", student, err)
		}
		uid := strconv.Itoa(n)
		if err := checkUID(uid, "allocated to "+student, floor); err != nil {
			return "", "", err
		}
		return uid, uid, nil
	}
	if usesUID(cc) {
		return "", "", fmt.Errorf("no host account named %s to take {uid} from (%v): give a uid, or set students.uids in courses.yaml so that the site allocates one", student, lerr)
	}
	return "", "", nil
}

// checkUID refuses a uid that is no number, or below floor: root (0) and
// the system accounts (daemon, bin, www-data...) own files and processes
// on the host that a student's server must not.
func checkUID(uid, from string, floor int) error {
	n, err := strconv.Atoi(uid)
	switch {
	case err != nil || n < 0:
		return fmt.Errorf("%w: uid %q (%s) is not a number", ErrBadUID, uid, from)
	case n >= floor:
		return nil
	}
	whose := "a system account's"
	if n == 0 {
		whose = "root's"
	}
	return fmt.Errorf("%w: uid %d (%s) is %s, and a student's server never runs below uid %d: give the student a uid of %d or more (spawn --uid, \"uid\" in the API), or set students.uids in courses.yaml so that the site allocates one (students.min-uid lowers the floor on a site whose accounts start lower)",
		ErrBadUID, n, from, whose, floor, floor)
}

func usesUID(cc manifest.Container) bool {
	all := append(append(append(slices.Clone(cc.Command), cc.Mounts...), cc.Entrypoint...), cc.Token, cc.User)
	for _, v := range cc.Env {
		all = append(all, v)
	}
	return slices.ContainsFunc(all, func(s string) bool { return strings.Contains(s, "{uid}") })
}

// workDir creates the student's work directory in course (and the
// student's folder above it), owned by uid:gid when a uid is known.
// Existing content is never touched.
func workDir(root, course, student, uid, gid string) error {
	sdir := rootdir.Student(root, student)
	dir := rootdir.StudentCourse(root, student, course)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	if uid == "" {
		return nil
	}
	u, _ := strconv.Atoi(uid)
	g, err := strconv.Atoi(gid)
	if err != nil {
		g = u
	}
	for _, d := range []string{sdir, dir} {
		// Never through a symbolic link: a link planted in the student's
		// folder would hand its target (/etc, say) to the student.
		if fi, err := os.Lstat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("work directory %s is not a directory (a symbolic link?): %v", d, err)
		}
		if err := os.Lchown(d, u, g); err != nil {
			return fmt.Errorf("give work directory to uid %s: %w", uid, err)
		}
	}
	return nil
}

// freePort asks the kernel for a free TCP port on ip. Another process may
// take it before the engine binds it; Start then reports ErrPortInUse and
// the caller picks again.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("choose a host port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var readyClient = &http.Client{Timeout: 2 * time.Second}

// WaitReady polls GET {base}api until the server answers 200, ctx ends or
// timeout passes (ErrTimeout). Polling starts fast, since a fresh server
// usually answers within tens of milliseconds, and backs off to 100ms.
func WaitReady(ctx context.Context, base string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := base + "api"
	delay := 5 * time.Millisecond
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", url, err)
		}
		resp, err := readyClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w: %s after %s (last: %v)", ErrTimeout, url, timeout, last)
			}
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}
