package containers

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/imageref"
	"github.com/nbhosting/nbh-sync/naming"
)

// Manager reads and spawns student containers. Its zero value is not
// usable; make one with New.
type Manager struct {
	eng   Engine
	locks *Locks
	log   *slog.Logger
	now   func() time.Time
	// HostIP is the address ports are published on (127.0.0.1).
	HostIP string
	// ReadyTimeout bounds the wait for a spawned server to answer.
	ReadyTimeout time.Duration
	// StopTimeout is how long a stopping server gets before it is killed.
	StopTimeout time.Duration
	// Site is the name of the site this Manager acts for. It is recorded
	// on the containers it creates (LabelSite), and a labelled container
	// is this site's only when its LabelSite is exactly Site: a container
	// of another site, or of another tool that sets managed-by=nbh-sync
	// without a site, is never listed, stopped or removed. A real site
	// always has a name (package site sets it); empty is for tests, and
	// then owns only labelled containers without a site label.
	Site string
	// Tokens derives the Jupyter token of a container whose course sets
	// none; nil leaves such servers without a token from nbh-sync.
	Tokens TokenSource
}

// New returns a Manager over eng. locks is shared with the container pass
// (reconcile) so that the pass never removes a container being handed out;
// nil makes a private registry.
func New(eng Engine, locks *Locks, log *slog.Logger) *Manager {
	if locks == nil {
		locks = NewLocks()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{eng: eng, locks: locks, log: log, now: time.Now,
		HostIP: "127.0.0.1", ReadyTimeout: 2 * time.Minute, StopTimeout: 10 * time.Second}
}

// Over returns a Manager like m — same site, token source, timeouts and
// locks — over another engine: the Swarm engine of a site whose local
// manager is m. A copy of every setting, not a list of them, so that a
// setting added to Manager reaches both engines (the Swarm manager once
// lacked Tokens, and its servers made up their own).
func (m *Manager) Over(eng Engine) *Manager {
	c := *m
	c.eng = eng
	return &c
}

// Locks returns the registry shared by spawns and passes.
func (m *Manager) Locks() *Locks { return m.locks }

// List returns this site's containers, sorted by name, from one engine list
// call: those labelled managed-by=nbh-sync for this site (LabelSite equal
// to Site), and, for adoption, those with no labels of ours that are named
// C-x-S where adopt(C) holds. adopt says which courses the site has (or
// had): an unlabelled container of any other course is someone else's.
// A nil adopt adopts nothing. Any container not listed is left out, so
// nothing downstream can touch it.
func (m *Manager) List(ctx context.Context, adopt func(course string) bool) ([]Container, error) {
	raws, err := m.eng.List(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]Container, 0, len(raws))
	for _, r := range raws {
		c, ok := classify(r, now)
		if !ok || !m.ours(r, c) {
			continue
		}
		if c.Adopted && (adopt == nil || !adopt(c.Course)) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the container of a student, from an inspect (exact start
// time). It returns an error wrapping ErrNotFound when there is none, and
// one wrapping ErrNotManaged when the container of that name is not this
// site's (another site's, another tool's). An unlabelled nbhosting
// container of that name is returned as adopted: the caller vouches that
// course is one of the site's (spawn takes it from courses.yaml, Apply
// from a listed container).
func (m *Manager) Get(ctx context.Context, course, student string) (Container, error) {
	name := naming.Container(course, student)
	r, err := m.eng.Inspect(ctx, name)
	if err != nil {
		return Container{}, err
	}
	c, ok := classify(r, m.now())
	ok = ok && m.ours(r, c)
	if !ok || c.Course != course || c.Student != student {
		return Container{}, fmt.Errorf("container %s: %w", name, ErrNotManaged)
	}
	return c, nil
}

// CurrentImages maps each image name to the ID its :latest tag resolves
// to, in one engine call, for the images nbh-sync built (see BuiltHere);
// images not built yet, and foreign images under the same name, are
// absent: nothing is stale against an image the site would not run.
func (m *Manager) CurrentImages(ctx context.Context, names []string) (map[string]string, error) {
	ims, err := m.latest(ctx, names)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ims))
	for name, im := range ims {
		if BuiltHere(name, im) == nil {
			out[name] = im.ID
		}
	}
	return out, nil
}

// latest maps each image name to what its :latest tag is, built here or not.
func (m *Manager) latest(ctx context.Context, names []string) (map[string]Image, error) {
	name := make(map[string]string, len(names)) // reference → image name
	refs := make([]string, 0, len(names))
	for _, n := range names {
		ref := imageref.Repository(m.Site, n) + ":latest"
		if _, ok := name[ref]; !ok {
			name[ref] = n
			refs = append(refs, ref)
		}
	}
	slices.Sort(refs)
	ims, err := m.eng.Images(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Image, len(ims))
	for ref, im := range ims {
		out[name[ref]] = im
	}
	return out, nil
}

// URLOf returns the base URL of c's server, under its own prefix: on its
// node when the engine reports one (Swarm), else on HostIP.
func (m *Manager) URLOf(c Container) string { return c.URL(cmp.Or(c.Host, m.HostIP)) }

// BuiltHere returns nil when im, what name:latest resolves to, was built by
// nbh-sync for that image: it carries the build labels the builder sets
// (imageref.LabelBuildKey, and imageref.LabelImage naming it). A same-named
// image from elsewhere (a docker import, a pull, another tool's build)
// gives an error wrapping ErrImageNotBuilt that says what to do.
func BuiltHere(name string, im Image) error {
	switch got := im.Labels[imageref.LabelImage]; {
	case im.Labels[imageref.LabelBuildKey] == "":
		return fmt.Errorf("%w: image %s:latest was not built by this site (no %s label) — run `nbh-sync build %s`",
			ErrImageNotBuilt, name, imageref.LabelBuildKey, name)
	case got != name:
		return fmt.Errorf("%w: image %s:latest was not built by this site (its %s label says %q) — run `nbh-sync build %s`",
			ErrImageNotBuilt, name, imageref.LabelImage, got, name)
	}
	return nil
}

// Stop stops a container (idempotent).
func (m *Manager) Stop(ctx context.Context, id string) error {
	return m.eng.Stop(ctx, id, m.StopTimeout)
}

// Remove stops and removes a container, never its volumes (idempotent).
func (m *Manager) Remove(ctx context.Context, id string) error {
	if err := m.eng.Stop(ctx, id, m.StopTimeout); err != nil {
		return err
	}
	return m.eng.Remove(ctx, id)
}

// ours reports whether a classified container belongs to this site: a
// labelled one when its site label is this site's name (so one without a
// site label belongs to no named site), an unlabelled nbhosting one always
// (List then asks whether its course is the site's).
func (m *Manager) ours(r Raw, c Container) bool {
	return c.Adopted || r.Labels[LabelSite] == m.Site
}

// classify turns an engine container into a managed one; ok is false for a
// container nbh-sync must never touch.
func classify(r Raw, now time.Time) (Container, bool) {
	c := Container{ID: r.ID, Name: r.Name, ImageID: r.ImageID, Created: r.Created}
	if r.Labels[LabelManagedBy] == ManagedBy {
		c.Course, c.Student = r.Labels[LabelCourse], r.Labels[LabelStudent]
		if c.Course == "" || c.Student == "" {
			return Container{}, false
		}
		c.UID, c.Settings = r.Labels[LabelUID], r.Labels[LabelSettings]
		c.Port, _ = strconv.Atoi(r.Labels[LabelPort])
	} else {
		if r.Labels[LabelCourse] != "" || r.Labels[LabelStudent] != "" || r.Labels[LabelManagedBy] != "" || r.Labels[LabelSite] != "" {
			// Someone else's labels: not ours, not nbhosting's.
			return Container{}, false
		}
		course, student, ok := naming.Split(r.Name)
		if !ok {
			return Container{}, false
		}
		c.Course, c.Student, c.Adopted = course, student, true
	}
	switch r.EngineState {
	case "running", "paused", "restarting":
		c.State = Running
	default:
		c.State = Stopped
	}
	// A live binding wins over the label: it is what the engine has.
	for _, hp := range r.Ports {
		c.Port = hp
		break
	}
	if len(r.Ports) > 1 && c.Port != 0 {
		// Several published ports: prefer the recorded one if live.
		if lp, _ := strconv.Atoi(r.Labels[LabelPort]); lp != 0 && slices.Contains(mapValues(r.Ports), lp) {
			c.Port = lp
		}
	}
	c.Host, c.Task = r.Host, r.Task
	c.BasePath = r.Labels[LabelBasePath]
	if !naming.ValidBasePath(c.BasePath) {
		c.BasePath = ""
		if c.Port != 0 {
			c.BasePath = naming.BasePath(c.Port)
		}
	}
	c.StartedAt = r.StartedAt
	if c.StartedAt.IsZero() && c.State == Running {
		c.StartedAt = startedFromStatus(r.Status, r.Created, now)
	}
	return c, true
}

func mapValues(m map[int]int) []int {
	var v []int
	for _, x := range m {
		v = append(v, x)
	}
	return v
}

var upFor = regexp.MustCompile(`^Up (Less than a second|About a minute|About an hour|(\d+) (second|minute|hour|day|week|month|year)s?)`)

// startedFromStatus derives when a running container started from the list's
// status text ("Up 3 hours"), without an inspect per container. The text is
// rounded (docker's HumanDuration), so the start is bracketed: when the
// creation time falls in the bracket — the usual case, a container started
// right after it was made — it is taken as the start (exact then); otherwise
// the latest possible start is, so that the error is bounded by the rounding
// and leans towards a container looking younger (less idle) than it is.
// Zero when the text cannot be read.
func startedFromStatus(status string, created, now time.Time) time.Time {
	m := upFor.FindStringSubmatch(status)
	if m == nil {
		return time.Time{}
	}
	var lo, hi time.Duration // the container has been up between lo and hi
	switch m[1] {
	case "Less than a second":
		lo, hi = 0, time.Second
	case "About a minute":
		lo, hi = time.Minute, 2*time.Minute
	case "About an hour":
		lo, hi = 30*time.Minute, 90*time.Minute
	default:
		n, _ := strconv.Atoi(m[2])
		d := time.Duration(n)
		switch m[3] {
		case "second":
			lo, hi = d*time.Second, (d+1)*time.Second
		case "minute":
			lo, hi = d*time.Minute, (d+1)*time.Minute
		case "hour":
			lo, hi = d*time.Hour-30*time.Minute, d*time.Hour+30*time.Minute
		case "day":
			lo, hi = d*24*time.Hour, (d+1)*24*time.Hour
		case "week":
			lo, hi = d*7*24*time.Hour, (d+1)*7*24*time.Hour
		case "month":
			lo, hi = d*30*24*time.Hour, (d+1)*30*24*time.Hour
		case "year":
			lo, hi = d*365*24*time.Hour, (d+1)*365*24*time.Hour
		}
	}
	// Allow a few seconds of slack for the clock between the engine's
	// status and our now, and for create-to-start delays.
	const slack = 5 * time.Second
	if !created.IsZero() && !created.Before(now.Add(-hi-slack)) && !created.After(now.Add(-lo+slack)) {
		return created
	}
	return now.Add(-lo)
}
