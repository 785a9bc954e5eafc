// Package daemon is `nbh-sync run`: one process that wires every trigger —
// polling and the other cron schedules, fsnotify on local repos, webhooks,
// the API — into level-triggered passes over the site, and serves the
// dashboard, the JSON API and /metrics.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/gitwatch/webhook"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/metrics"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/proxy"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
	"github.com/nbhosting/nbh-sync/trigger"
	"github.com/nbhosting/nbh-sync/usage"
)

// Defaults of the schedules the daemon runs when courses.yaml sets none:
// without them nothing would notice a push made without a webhook, or a
// student gone idle.
const (
	DefaultPull      = "@every 5m"
	DefaultReconcile = "@every 5m"
	// A failed pass is asked for again after RetryBase, doubling up to
	// RetryMax (the default schedules' period), when its error says a
	// retry may succeed; see trigger.Options.
	RetryBase = 30 * time.Second
	RetryMax  = 5 * time.Minute
)

// The queue keys of site passes. A pass covers the whole site: courses
// proceed concurrently inside it (fetches, builds and container actions are
// each bounded), and passes of one key are serialized. Pulls (with the
// builds they bring) and container passes have keys of their own, so that
// a long build never holds back the retirement of idle containers.
const (
	pullKey = "pull"       // pull, then build what changed
	passKey = "containers" // container pass
)

// Options configure the daemon.
type Options struct {
	Config string
	// ConfigCredentials authenticate to the config repo; nil for none.
	ConfigCredentials *manifest.Credentials
	// SafeDirectories are local repositories trusted whatever their owner.
	SafeDirectories []string
	Root            string
	// Listen is the HTTP address (host:port; port 0 picks one).
	Listen string
	// TokenFile holds the bearer token of mutating API calls; without it
	// they are all refused.
	TokenFile string
	// WebhookSecretFile holds the webhook secret; without it /hooks/
	// refuses every request.
	WebhookSecretFile string
	// PassTimeout bounds one pass; Grace is how long SIGTERM lets a running
	// pass finish before cancelling it.
	PassTimeout time.Duration
	Grace       time.Duration
	// Debounce groups file-system events of a local repo into one pass.
	Debounce time.Duration
	// AllowedHosts are host names, besides localhost and IP addresses,
	// that the dashboard and the read-only API answer to (the names of a
	// reverse proxy in front of the daemon).
	AllowedHosts []string
	// Proxy configures the students' front door (off without a Listen).
	Proxy ProxyOptions
	// Demo, when set, is the demo student the dashboard opens with no
	// token (run --demo): for a demo on this machine only, so Run
	// refuses it unless Listen is a loopback address and the front door
	// is on.
	Demo string
	Log  *slog.Logger
}

// demoUID is the uid of the demo student's server: the host has no
// account of that name, and the start script makes the uid in the
// container.
const demoUID = 1000

// checkDemo refuses the demo credential where someone other than this
// machine's users could use it.
func (o Options) checkDemo() error {
	if o.Demo == "" {
		return nil
	}
	if !loopbackOnly(o.Listen) {
		return fmt.Errorf("--demo opens notebooks with no token: --listen %q must be a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", o.Listen)
	}
	if o.Proxy.Listen == "" {
		return errors.New("--demo opens the notebook through the front door: give --proxy-listen too")
	}
	return nil
}

// loopbackOnly is true when addr (host:port) listens on loopback only.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// daemon is the running process's state.
type daemon struct {
	opts    Options
	log     *slog.Logger
	site    *site.Site
	hist    *history.Store
	metrics *metrics.Metrics
	queue   *trigger.Queue
	sched   *trigger.Scheduler
	secret  []byte
	replays *webhook.Replays
	// proxy is the front door (nil when off); publicURL gives its launch
	// URLs their scheme, host and port (see proxy.LaunchURL).
	proxy     *proxy.Proxy
	publicURL *url.URL
	// usage keeps what students use (sessions, notebooks, servers, disk).
	usage *usageRecorder
	// outside is what sources outside the servers (the front door) saw
	// of them; the container passes count it as activity.
	outside *activity.Outside

	ready      atomic.Bool
	allowPrune atomic.Bool // one-shot confirmation of a mass prune

	mu        sync.Mutex
	watching  []string           // local repo paths watched
	stopWatch context.CancelFunc // stops the current watcher
}

// Run runs the daemon until ctx ends, then stops gracefully: no new pass
// starts, a running one gets Options.Grace to finish (then is cancelled;
// every step of a pass is safe to abandon), the HTTP server drains.
func Run(ctx context.Context, opts Options) error {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := opts.checkDemo(); err != nil {
		return err
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return err
	}
	opts.Root = root
	if err := PrepareRoot(root, opts.Log); err != nil {
		return err
	}
	hist, err := history.Open(rootdir.History(root), history.Options{})
	if err != nil {
		return fmt.Errorf("open history (is another daemon running on %s?): %w", root, err)
	}
	defer hist.Close()

	d := &daemon{opts: opts, log: opts.Log, hist: hist, metrics: metrics.New(), replays: newReplays(), outside: activity.NewOutside(nil)}
	us, err := usage.Open(rootdir.Usage(root))
	if err != nil {
		return err
	}
	d.usage = &usageRecorder{d: d, store: us}
	defer us.Flush()
	d.metrics.Registry().MustRegister(usage.NewCollector(us, nil))
	for _, f := range []string{opts.WebhookSecretFile, opts.TokenFile} {
		warnIfReadable(opts.Log, f)
	}
	if opts.WebhookSecretFile != "" {
		b, err := server.LoadToken(opts.WebhookSecretFile)
		if err != nil {
			return fmt.Errorf("webhook secret: %w", err)
		}
		d.secret = []byte(b)
	}
	var token string
	if opts.TokenFile != "" {
		if token, err = server.LoadToken(opts.TokenFile); err != nil {
			return err
		}
	}
	d.site, err = site.New(site.Options{Config: opts.Config, ConfigCredentials: opts.ConfigCredentials, SafeDirectories: opts.SafeDirectories, Root: root, Log: opts.Log, History: hist, Metrics: d.metrics,
		Observed: d.observed, Warmed: d.warmed, Traffic: d.outside, Sampled: d.usage.sampled})
	if err != nil {
		return err
	}
	defer d.site.Close()
	d.queue = trigger.New(d.pass, trigger.Options{Concurrency: 2, Timeout: opts.PassTimeout,
		RetryBase: RetryBase, RetryMax: RetryMax, Grace: opts.Grace, Logger: opts.Log, Done: d.passDone})
	d.sched = trigger.NewScheduler(func(k trigger.Kinds) { d.trigger(k, "schedule") }, nil, opts.Log)

	scfg := server.Config{Backend: backend{d}, Hooks: server.HookFunc(d.push),
		HookHeaders: hookHeaders, AllowedHosts: append([]string{opts.Listen}, opts.AllowedHosts...), Metrics: d.metrics.Handler(), Token: token,
		Builds: d.site.LiveBuilds(), Ops: ops{d}, Usage: d.usage, Logger: opts.Log}
	if opts.Demo != "" {
		scfg.Demo = &server.Demo{Student: opts.Demo, UID: demoUID}
		opts.Log.Warn("demo credential on: whoever can open the dashboard can open a notebook as the demo student; never in production",
			"student", opts.Demo, "dashboard", opts.Listen)
	}
	srv, err := server.New(scfg)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	// The front door listens first, so that everything serves once the
	// "listening" line is out.
	frontDoorDone := func() {}
	if opts.Proxy.Listen != "" {
		if frontDoorDone, err = d.startFrontDoor(srvCtx); err != nil {
			stopServer()
			return err
		}
	}
	defer func() { stopServer(); frontDoorDone() }()
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Tests and scripts read the address (with --listen :0) from this line.
	opts.Log.Info("listening", "addr", ln.Addr().String(), "dashboard", "http://"+ln.Addr().String()+"/")
	// The command line on this host talks to the daemon through its socket.
	listeners := []net.Listener{ln}
	if sock, err := server.ListenSocket(ctx, rootdir.APISocket(root)); err != nil {
		opts.Log.Warn("no API socket: the command line needs --api to reach this daemon", "err", err)
	} else {
		listeners = append(listeners, sock)
		opts.Log.Info("API socket", "path", sock.Addr().String())
	}

	for _, l := range listeners {
		wg.Go(func() {
			if err := srv.Serve(srvCtx, l); err != nil {
				opts.Log.Error("http server", "err", err)
			}
		})
	}
	wg.Go(func() { d.sched.Run(ctx) })

	d.trigger(trigger.Sync, "startup")
	err = d.queue.Run(ctx) // returns once passes are done or abandoned
	d.stopWatching()
	stopServer()
	wg.Wait()
	if err != nil && ctx.Err() != nil {
		// Asked to stop: a pass cut short is expected, and safe (every step
		// can be abandoned; the next start converges). Not a failure.
		opts.Log.Warn("stopped; a pass was cut short and will be redone at the next start", "err", err)
		return nil
	}
	opts.Log.Info("stopped")
	return err
}

// trigger asks for the passes that kinds need: a pull (or rebuild) pass,
// which asks for a container pass when it is done, or a container pass.
func (d *daemon) trigger(kinds trigger.Kinds, reason string) {
	if pull := kinds & (trigger.Pull | trigger.Rebuild); pull != 0 {
		d.queue.Trigger(pullKey, pull, reason)
	} else if kinds.Has(trigger.Reconcile) {
		d.queue.Trigger(passKey, trigger.Reconcile, reason)
	}
}

// pass runs one pass: on pullKey a pull and the builds it calls for, then a
// container pass is asked for to bring them into service; on passKey a
// container pass.
func (d *daemon) pass(ctx context.Context, p trigger.Pass) error {
	if p.Key == passKey {
		allow := d.allowPrune.Swap(false)
		rep, err := d.site.Pass(ctx, site.PassOptions{AllowMassPrune: allow})
		if rep.WarmLeft() && ctx.Err() == nil {
			d.queue.Trigger(passKey, trigger.Reconcile, "warm-ups left")
		}
		return err
	}
	var errs []error
	if _, err := d.site.Pull(ctx); err != nil {
		var nc *site.NoConfigError
		if errors.As(err, &nc) {
			d.configured(ctx) // the default schedules retry the pull
			return err        // nothing to apply: wait for a valid config
		}
		errs = append(errs, err)
	}
	d.configured(ctx)
	if _, err := d.site.BuildAll(ctx, p.Kinds.Has(trigger.Rebuild)); err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() == nil {
		d.queue.Trigger(passKey, trigger.Reconcile, "after pull")
	}
	return errors.Join(errs...)
}

func (d *daemon) passDone(p trigger.Pass, err error, dur time.Duration) {
	d.metrics.ObservePass(p.Kinds.String(), dur, err, time.Now())
	// A pass is a burst (the first reads every mirror; a container pass
	// decodes the list of every container), and the daemon idles until the
	// next: what it keeps between passes is a fraction of a pass's peak
	// (bench/memory: 10 MB live at 500 courses and 10,000 containers). So
	// the pass's garbage goes back to the system now, one collection per
	// pass, rather than as the runtime's scavenger gets round to it; the
	// first time before the daemon says it is ready.
	debug.FreeOSMemory()
	d.ready.Store(true)
}

// configured applies the config in force to the daemon itself: schedules
// and the set of local repos watched. Before any config is in force (the
// first pull failed: a remote down, a fetch timed out), the default
// schedules retry the pull and a local config repo is watched, so that the
// daemon does not wait for ever.
func (d *daemon) configured(ctx context.Context) {
	cfg, err := d.site.Config(ctx)
	if err != nil {
		cfg = &manifest.Config{}
	}
	sch := cfg.Schedules
	if sch.Pull == "" {
		sch.Pull = DefaultPull
	}
	if sch.Reconcile == "" {
		sch.Reconcile = DefaultReconcile
	}
	if err := d.sched.Update(sch); err != nil {
		d.log.ErrorContext(ctx, "schedules not updated", "err", err)
	}
	var warm []string
	for _, co := range cfg.Courses {
		for _, w := range co.Warm {
			warm = append(warm, w.Cron)
		}
	}
	if err := d.sched.SetWarm(warm); err != nil {
		d.log.ErrorContext(ctx, "warm windows not scheduled", "err", err)
	}
	d.watch(ctx, localRepos(d.site.Location(), cfg))
}

// localRepos returns the repos of the site given as local paths, which
// fsnotify can watch.
func localRepos(loc gitwatch.ConfigLocation, cfg *manifest.Config) []string {
	var paths []string
	add := func(p string) {
		if filepath.IsAbs(p) {
			paths = append(paths, p)
		} else if u, ok := strings.CutPrefix(p, "file://"); ok {
			paths = append(paths, u)
		}
	}
	add(loc.URL)
	for _, co := range cfg.Courses {
		if co.Repo != "." {
			add(co.Repo)
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// watch (re)starts the watcher of local repos when their set changed.
func (d *daemon) watch(ctx context.Context, paths []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Equal(paths, d.watching) {
		return
	}
	if d.stopWatch != nil {
		d.stopWatch()
		d.stopWatch = nil
	}
	d.watching = paths
	if len(paths) == 0 {
		return
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopWatch = cancel
	debounce := d.opts.Debounce
	if debounce <= 0 {
		debounce = 300 * time.Millisecond
	}
	go func() {
		err := gitwatch.Watch(wctx, paths, debounce, func(path string) {
			d.log.Info("local repo changed", "path", path)
			d.trigger(trigger.Sync, "fsnotify:"+path)
		})
		if err != nil && wctx.Err() == nil {
			d.log.Error("watching local repos stopped", "err", err)
		}
	}()
	d.log.Info("watching local repos", "paths", paths)
}

func (d *daemon) stopWatching() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopWatch != nil {
		d.stopWatch()
	}
}

// Signed webhooks are remembered this long, at most this many, to refuse
// replays: an hour of pushes on a busy site fits. A replay could only
// trigger passes, so the window is short: a script that posts the same
// minimal generic payload for every push loses only pushes within an hour
// of each other to it (polling still sees them).
const (
	replayTTL = time.Hour
	replayMax = 10000
)

func newReplays() *webhook.Replays { return webhook.NewReplays(replayTTL, replayMax) }

// warnIfReadable warns when a secret file can be read by other users.
func warnIfReadable(log *slog.Logger, path string) {
	if path == "" {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("secret file readable by others: chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
}

// spawnError maps a spawn failure onto the HTTP status the API answers.
func spawnError(err error) error {
	switch {
	case errors.Is(err, manifest.ErrUnknownCourse):
		return fmt.Errorf("%w: %w", server.ErrNotFound, err)
	case errors.Is(err, naming.ErrBadStudent), errors.Is(err, containers.ErrBadUID), errors.Is(err, containers.ErrBadPath):
		return fmt.Errorf("%w: %w", server.ErrInvalid, err)
	case errors.Is(err, manifest.ErrArchived), errors.Is(err, containers.ErrNotManaged):
		return fmt.Errorf("%w: %w", server.ErrConflict, err)
	case errors.Is(err, containers.ErrImageNotBuilt):
		return fmt.Errorf("%w: %w", server.ErrNotReady, err)
	}
	return err
}

func uidString(uid *int) string {
	if uid == nil {
		return ""
	}
	return strconv.Itoa(*uid)
}
