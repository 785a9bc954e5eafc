// Package site ties the parts of nbh-sync into passes over one course site:
// pull (gitwatch), build (images), container pass (reconcile). The command
// line and the daemon both drive a Site; neither knows how the parts work.
package site

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/livelog"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/metrics"
	"github.com/nbhosting/nbh-sync/notify"
	"github.com/nbhosting/nbh-sync/retry"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/token"
)

// Options say where the site's desired state is and where its data lives.
type Options struct {
	// Config is the --config flag: a git URL, a bare repo, or a folder
	// inside a git work tree.
	Config string
	// ConfigCredentials authenticate to the config repo, as a course's
	// credentials: do; nil for none.
	ConfigCredentials *manifest.Credentials
	// SafeDirectories are local repositories trusted whatever their owner
	// (gitwatch.Options.SafeDirectories).
	SafeDirectories []string
	// Root is the data directory: mirrors, course work trees, state.
	Root string
	// MirrorRoot, when set, is the directory whose mirrors/ holds the
	// mirrors instead of Root's: a plan of a site whose data directory
	// does not exist yet fetches into a temporary one, so that a
	// read-only command never creates Root.
	MirrorRoot string
	Log        *slog.Logger
	// History, Metrics are optional sinks of what passes do.
	History *history.Store
	Metrics *metrics.Metrics
	// ImageEngine and ContainerEngine default to the local Docker engine
	// (DOCKER_HOST or the socket); tests may swap them.
	ImageEngine     images.Engine
	ContainerEngine containers.Engine
	// Engines are the engines of the kinds other than the local one
	// (ContainerEngine), by engine.kind; a kind not given here is opened
	// through the containers package's registry on first use (see
	// engineOf). Tests swap them.
	Engines map[string]containers.Engine
	// Observed, when set, is told the containers each container pass
	// listed, and when it listed them (the front door's route table
	// follows them).
	Observed func(cs []containers.Container, at time.Time)
	// Warmed, when set, is told of each server a warm-up started, once it
	// answers: the front door then routes the student's first click to it
	// straight away, without a spawn's engine calls and readiness check.
	Warmed func(course, student string, sp containers.Spawned)
	// Traffic, when set, is what the students' front door saw of each
	// server: container passes count it as activity.
	Traffic activity.TrafficSource
	// Sampled, when set, is told what each container pass saw — the
	// containers and their activity — for the usage record.
	Sampled func(cs []containers.Container, act map[string]activity.Result, at time.Time)
	// Notebooks, when set, makes ready what a deep link opens before the
	// browser is sent there (see Open); nil opens the path as it is.
	Notebooks Notebooks
}

// Site is one course site: its config repo, course repos, images and
// student containers. It is safe for concurrent use.
type Site struct {
	opts    Options
	log     *slog.Logger
	loc     gitwatch.ConfigLocation
	mirrors *gitwatch.Mirrors
	loader  *configrepo.Loader
	syncer  *gitwatch.Syncer
	ctrs    *containers.Manager // the local engine's
	// engines are the engine of each kind in use, by engine.kind: the
	// local one from the start, another on first use. mu held.
	engines  map[string]*kindEngine
	registry *images.Registry // of a site whose nodes pull from one, made on first use
	clock    func() time.Time // nil: time.Now (see planAt)

	specMu   sync.Mutex // serializes reads of a revision's git trees
	mu       sync.Mutex
	rev      *configrepo.Revision // the config revision in force, once pulled
	rejected *configrepo.Rejection
	builder  *images.Builder // made from the first config's build: section
	notifier *notify.Notifier
	notifyOf []manifest.Notifier // the notify: section notifier was made from
	notifyOK bool                // notifier was made (nil when notify: is broken)

	// closers are the engine clients the site opened itself (not those
	// given in Options): Close releases them. mu held.
	closers []io.Closer

	// The records in the data directory (records.go), each with its lock.
	failures failuresRecord
	known    knownRecord
	holds    holdsRecord
	lastPass lastPassRecord

	stores stores // the workspace store of each course

	live *livelog.Logs // the logs of the builds of BuildAll while they run
}

// New opens the site described by opts. It does no network work and does
// not need the engine to be up.
func New(opts Options) (*Site, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	// The data directory names the site: its containers carry it as their
	// site label, and it is what tells them from other sites' on a shared
	// engine. One spelling of it, however --root was written.
	if opts.Root == "" {
		return nil, errors.New("site: no data directory (--root)")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("site: data directory %s: %w", opts.Root, err)
	}
	opts.Root = root
	loc, err := gitwatch.LocateConfig(opts.Config, "")
	if err != nil {
		return nil, err
	}
	var closers []io.Closer
	if opts.ImageEngine == nil || opts.ContainerEngine == nil {
		// One client of the engine for images and containers: one pool of
		// connections, closed once by Close.
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("connect to docker engine: %w", err)
		}
		closers = append(closers, cli)
		if opts.ImageEngine == nil {
			opts.ImageEngine = images.NewDocker(cli)
		}
		if opts.ContainerEngine == nil {
			opts.ContainerEngine = containers.NewDocker(cli)
		}
	}
	m := gitwatch.NewMirrors(cmp.Or(opts.MirrorRoot, opts.Root), opts.Log, gitwatch.Options{SafeDirectories: opts.SafeDirectories})
	ctrs := containers.New(opts.ContainerEngine, nil, opts.Log)
	ctrs.Site = SiteName(opts.Root)
	ctrs.Tokens = token.New(rootdir.TokenKey(opts.Root))
	s := &Site{
		opts:    opts,
		log:     opts.Log,
		loc:     loc,
		mirrors: m,
		loader:  configrepo.NewLoader(m, opts.Root, loc, opts.ConfigCredentials, opts.Log),
		syncer:  gitwatch.NewSyncer(m, opts.Root, opts.Log, 0),
		ctrs:    ctrs,
		engines: map[string]*kindEngine{manifest.EngineLocal: {ctrs: ctrs, prober: newProber(opts.ContainerEngine)}},
		closers: closers,
		live:    livelog.New(),

		failures: failuresRecord{path: rootdir.BuildFailures(opts.Root), log: opts.Log},
		known:    knownRecord{path: rootdir.KnownCourses(opts.Root), log: opts.Log},
		holds:    holdsRecord{path: rootdir.Holds(opts.Root), log: opts.Log},
		lastPass: lastPassRecord{path: rootdir.LastPass(opts.Root), log: opts.Log},
	}
	s.syncer.Held = s.held // courses on hold are not pulled
	return s, nil
}

// Close releases the engine clients the site opened. The site must not be
// used after.
func (s *Site) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// SiteName is the name of the site whose data directory is root (an
// absolute path): the value of the site label (org.nbhosting.site) on the
// containers it makes. A site acts only on containers carrying its own
// name, and on unlabelled nbhosting containers of its own courses.
func SiteName(root string) string { return filepath.Clean(root) }

// Location is where the config repo is.
func (s *Site) Location() gitwatch.ConfigLocation { return s.loc }

// Root is the data directory.
func (s *Site) Root() string { return s.opts.Root }

// ServerToken returns the Jupyter token of a student's server as the spawn
// and the probe have it: the course's container.token with placeholders
// expanded (port and uid as the container has them), else the one derived
// per student.
func (s *Site) ServerToken(ctx context.Context, course, student string, port int, uid string) (string, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return "", err
	}
	cc := cfg.Defaults.Container
	if co, ok := cfg.Courses[course]; ok {
		cc = co.Container
	}
	return s.ctrs.Token(cc, containers.Vars{Root: s.opts.Root, Course: course, Student: student, UID: uid, Port: port})
}

// HostIP is the address student servers publish their ports on.
func (s *Site) HostIP() string { return s.ctrs.HostIP }

// LiveBuilds returns the logs of the builds BuildAll runs, while they run.
func (s *Site) LiveBuilds() *livelog.Logs { return s.live }

// PullReport is what a pull did.
type PullReport struct {
	// ConfigCommit is the config revision in force after the pull.
	ConfigCommit string `json:"config_commit"`
	// ConfigChanged is true when the pull applied a new config revision.
	ConfigChanged bool `json:"config_changed"`
	// Rejected is set when the config head failed validation.
	Rejected *configrepo.Rejection   `json:"rejected,omitempty"`
	Courses  []gitwatch.CourseStatus `json:"courses"`
}

// NoConfigError says that no valid config revision was ever seen, so there
// is nothing to apply.
type NoConfigError struct {
	Rejected *configrepo.Rejection
	Err      error
}

func (e *NoConfigError) Error() string {
	var b strings.Builder
	b.WriteString("no valid config revision to apply")
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Rejected != nil {
		fmt.Fprintf(&b, "; commit %s was rejected:\n%s", shortid.Of(e.Rejected.Commit.String()), problems(e.Rejected))
	}
	return b.String()
}

func (e *NoConfigError) Unwrap() error { return e.Err }

// Terminal tells the pass's retry (package retry) that a rejected config
// with nothing else wrong waits for a new commit; a fetch that failed
// (Err) is retried.
func (e *NoConfigError) Terminal() bool { return e.Err == nil && e.Rejected != nil }

// Pull fetches the config repo, applies its head if valid (else keeps the
// last good revision), then fetches every course repo and checks the
// courses out. Errors of single courses are joined in the error; the report
// is valid beside them.
func (s *Site) Pull(ctx context.Context) (PullReport, error) {
	start := time.Now()
	res, err := s.loader.Load(ctx)
	s.configEvents(ctx, res, err)
	if res.Current == nil {
		return PullReport{Rejected: res.Rejected}, &NoConfigError{Rejected: res.Rejected, Err: err}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if res.Rejected != nil {
		errs = append(errs, retry.OnNewInputs(fmt.Errorf("config commit %s rejected, still applying %s:\n%s",
			shortid.Of(res.Rejected.Commit.String()), shortid.Of(res.Current.Commit.String()), problems(res.Rejected))))
	}
	s.mu.Lock()
	s.rev, s.rejected = res.Current, res.Rejected
	s.refreshNotifier(ctx, res.Current.Config)
	s.mu.Unlock()

	st, err := s.syncer.Sync(ctx, res.Current.Config, res.Current.Location, res.Current.Commit)
	if err != nil {
		errs = append(errs, err)
	}
	res.Current.Sources.Refresh()
	s.pullEvents(ctx, st, start)
	return PullReport{ConfigCommit: res.Current.Commit.String(), ConfigChanged: res.Changed, Rejected: res.Rejected, Courses: st.Courses}, errors.Join(errs...)
}

// revision returns the config revision in force: the one of this process,
// else the last good one recorded under root, else it pulls.
func (s *Site) revision(ctx context.Context) (*configrepo.Revision, error) {
	s.mu.Lock()
	rev := s.rev
	s.mu.Unlock()
	if rev != nil {
		return rev, nil
	}
	if rev = s.loader.Restored(); rev != nil {
		s.mu.Lock()
		if s.rev == nil {
			s.rev = rev
			s.refreshNotifier(ctx, rev.Config)
		}
		s.mu.Unlock()
		return rev, nil
	}
	_, err := s.Pull(ctx)
	s.mu.Lock()
	rev = s.rev
	s.mu.Unlock()
	if rev == nil {
		return nil, err
	}
	return rev, nil
}

// Config returns the config in force, pulling first if needed.
func (s *Site) Config(ctx context.Context) (*manifest.Config, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	return rev.Config, nil
}

// refreshNotifier (re)makes the notifier when notify: changed. s.mu held.
func (s *Site) refreshNotifier(ctx context.Context, cfg *manifest.Config) {
	if s.notifyOK && reflect.DeepEqual(s.notifyOf, cfg.Notify) {
		return
	}
	n, err := notify.New(cfg.Notify, notify.Options{Logger: s.log})
	if err != nil {
		s.log.ErrorContext(ctx, "notifications off until notify: changes", "err", err)
		n = nil
	}
	s.notifier, s.notifyOf, s.notifyOK = n, cfg.Notify, true
}

func problems(r *configrepo.Rejection) string {
	lines := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}

// planAt is the clock of passes: time.Now, unless a test moved this site's
// (Site.clock; a field, not a package variable, so tests of sites side by
// side each move their own).
func (s *Site) planAt() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}

// Pushed says what of the site a push concerns; keys are the pushed
// remotes, as gitwatch.NormalizeURL spells them. It ends the fetch backoff
// of each of the site's repos pushed to (the config repo, course repos),
// and returns the courses whose repo was pushed — those in the config repo
// when it was — sorted; ours is false when the push concerns none of the
// site's repos. Without a config in force, nothing is ours.
func (s *Site) Pushed(ctx context.Context, keys []string) (courses []string, ours bool) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return nil, false
	}
	pushed := func(url string) bool {
		if !slices.Contains(keys, gitwatch.NormalizeURL(url)) {
			return false
		}
		s.mirrors.Reset(url) // a push ends any backoff at once
		ours = true
		return true
	}
	configPushed := pushed(s.loc.URL)
	for _, name := range cfg.CourseNames() { // sorted
		co := cfg.Courses[name]
		if co.Repo == "." && configPushed || co.Repo != "." && pushed(co.Repo) {
			courses = append(courses, name)
		}
	}
	return courses, ours
}
