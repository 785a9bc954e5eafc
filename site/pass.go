package site

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/metrics"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/uids"
)

// PassReport is what one container pass decided and did.
type PassReport struct {
	At       time.Time           `json:"at"`
	Duration time.Duration       `json:"duration_ns"`
	Actions  []reconcile.Action  `json:"actions"`
	Outcomes []reconcile.Outcome `json:"outcomes"`
	// CPUEngineReads counts the engine calls made to read containers' CPU
	// time, apart from the pass's constant engine calls (none when the
	// engine runs on this host: cgroups are read instead).
	CPUEngineReads int `json:"cpu_engine_reads,omitempty"`
	// RegistryPruned says what old builds the pass deleted from a Swarm
	// site's registry, and the space its next garbage-collect reclaims.
	RegistryPruned []images.RegistryPrune `json:"registry_pruned,omitempty"`
	Error          string                 `json:"error,omitempty"`
}

// PassOptions tune a container pass.
type PassOptions struct {
	// AllowMassPrune confirms a config revision that removes more than
	// half of the courses that have containers.
	AllowMassPrune bool
}

// pass returns the site's container pass under cfg over ctrs (the manager
// of the engine cfg names): the one the daemon, the command line, the tests
// and the benchmark all run. record says whether cfg's courses join the
// site's record of the courses it has had: a pass that applies cfg records
// them, a plan only reads the record.
func (s *Site) pass(ctx context.Context, ctrs *containers.Manager, cfg *manifest.Config, record bool) *reconcile.Pass {
	return &reconcile.Pass{Containers: ctrs, Prober: s.proberOf(ctrs), Root: s.opts.Root,
		Concurrency: reconcile.DefaultConcurrency, Now: s.planAt, Log: s.log, Had: s.known.update(ctx, cfg, record),
		MemoryFile: rootdir.ActivityMemory(s.opts.Root), Traffic: s.opts.Traffic, Suspended: s.suspensions(cfg), Expected: s.expected}
}

// newProber is the activity probe of a site's engine: it reads each
// container's CPU time from its cgroup when the container runs on this
// host, else (when the engine can tell) from the engine's one-shot stats.
//
// The Swarm engine cannot tell: a manager answers stats only of its own
// node's containers, and a service ID is no container at all (one wasted
// call per student, answered 404). So on Swarm the CPU time of a task on
// this host is read from its cgroup, and that of a task on another node is
// not read: its server is held by what Jupyter and the front door say
// (kernels, terminals, connections, traffic), not by its CPU use.
func newProber(eng containers.Engine) *activity.Prober {
	p := activity.New()
	cpu := &activity.LocalFirst{Local: activity.Cgroup{}}
	if r, ok := eng.(activity.CPUReader); ok {
		cpu.Engine = r
	}
	p.CPU = cpu
	return p
}

// Pass runs one container pass under the config in force: observe, plan,
// apply. Old builds no container uses are pruned after it.
func (s *Site) Pass(ctx context.Context, opts PassOptions) (PassReport, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return PassReport{}, err
	}
	ctrs, err := s.containersOf(cfg)
	if err != nil {
		return PassReport{}, err
	}
	s.negotiate(ctx)
	res, err := s.pass(ctx, ctrs, cfg, true).Run(ctx, cfg, opts.AllowMassPrune)
	if _, ok := errors.AsType[*reconcile.ObserveError](err); ok {
		return PassReport{At: res.At}, err
	}
	obs := res.Observed
	if s.opts.Observed != nil {
		// What the pass listed, before it applied anything; res.At was
		// taken just before the engine was read.
		s.opts.Observed(obs.Containers, res.At)
	}
	// Warm-ups come after the retirements: a stale warm server nobody
	// opened is removed first, then started again on the current image.
	res.Outcomes = append(res.Outcomes, s.warmUp(ctx, res.Actions)...)
	if s.opts.Sampled != nil {
		s.opts.Sampled(obs.Containers, obs.Activity, res.At)
	}
	s.actionEvents(ctx, res.Outcomes)
	s.containerMetrics(obs)
	// Students whose server is not in use once the pass is over get the
	// course's new commit in their workspace.
	s.mergeWorkspaces(ctx, cfg, ctrs, res)

	rep := PassReport{At: res.At, Duration: time.Since(res.At), Actions: res.Actions, Outcomes: res.Outcomes, CPUEngineReads: obs.CPUEngineReads}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	inUse := map[string]bool{}
	for _, c := range obs.Containers {
		inUse[c.ImageID] = true
	}
	rep.RegistryPruned, err = s.prune(ctx, cfg, inUse)
	if err != nil {
		errs = append(errs, fmt.Errorf("prune old builds: %w", err))
	}
	if n, err := s.PruneTrash(time.Now(), TrashRetention); err != nil {
		errs = append(errs, fmt.Errorf("prune the trash: %w", err))
	} else if n > 0 {
		s.log.InfoContext(ctx, "workspaces deleted from the trash after their retention", "count", n, "retention", TrashRetention)
	}
	err = errors.Join(errs...)
	if err != nil {
		rep.Error = err.Error()
	}
	s.lastPass.set(ctx, rep)
	return rep, err
}

// readLastPass returns the last pass recorded under root, or nil.
func (s *Site) containerMetrics(obs reconcile.Observed) {
	if s.opts.Metrics == nil {
		return
	}
	type k struct {
		course, state string
		stale         bool
	}
	counts := map[k]int{}
	for _, c := range obs.Containers {
		counts[k{c.Course, string(c.State), obs.Desired.Courses[c.Course].Stale(c) != ""}]++
	}
	var out []metrics.ContainerCount
	for key, n := range counts {
		out = append(out, metrics.ContainerCount{Course: key.course, State: key.state, Stale: key.stale, Count: n})
	}
	s.opts.Metrics.SetContainers(out)
	s.opts.Metrics.CountCPUEngineReads(obs.CPUEngineReads)
}

// SyncOptions tune a full pass.
type SyncOptions struct {
	// Force rebuilds every image without cache (the rebuild schedule).
	Force bool
	PassOptions
}

// SyncReport is what a full pass did.
type SyncReport struct {
	Pull   PullReport      `json:"pull"`
	Builds []images.Result `json:"builds"`
	Pass   PassReport      `json:"pass"`
}

// Sync runs one full pass: pull, build what changed, container pass. A
// failed pull of one course or a failed build still lets the rest go on: a
// failed build keeps its previous image serving and so retires nothing.
func (s *Site) Sync(ctx context.Context, opts SyncOptions) (SyncReport, error) {
	var rep SyncReport
	var errs []error
	var err error
	rep.Pull, err = s.Pull(ctx)
	if err != nil {
		var nc *NoConfigError
		if errors.As(err, &nc) {
			return rep, err
		}
		errs = append(errs, err)
	}
	rep.Builds, err = s.BuildAll(ctx, opts.Force)
	if err != nil {
		errs = append(errs, err)
	}
	rep.Pass, err = s.Pass(ctx, opts.PassOptions)
	if err != nil {
		errs = append(errs, err)
	}
	return rep, errors.Join(errs...)
}

// spawnOptions are the site's inputs of a spawn under cfg: the uid floor
// of students.min-uid, with students.uids the site's allocation for
// students with no host account, and whether it adopts (engine.adopt).
func (s *Site) spawnOptions(cfg *manifest.Config, uid string) containers.SpawnOptions {
	opts := containers.SpawnOptions{Root: s.opts.Root, UID: uid, MinUID: cfg.Students.Floor(), NoAdopt: !cfg.Engine.Adopts()}
	if first, last, ok := cfg.Students.UIDRange(); ok {
		opts.UIDs = uids.New(s.opts.Root, uids.Range{First: first, Last: last}, cfg.Students.Floor())
	}
	return opts
}

// Spawn ensures student's container for course under the config
// in force. An empty uid means the uid of the host account named student,
// else the one the site allocated to the student (students.uids).
func (s *Site) Spawn(ctx context.Context, course, student, uid string) (containers.Spawned, error) {
	return s.spawn(ctx, course, student, uid, "spawn")
}

// spawn is Spawn, recording a server it starts as action in the history
// unless action is empty (a warm-up: the pass records it).
func (s *Site) spawn(ctx context.Context, course, student, uid, action string) (containers.Spawned, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return containers.Spawned{}, err
	}
	co, err := cfg.Course(course)
	if err != nil {
		return containers.Spawned{}, err
	}
	ctrs, err := s.containersOf(cfg)
	if err != nil {
		return containers.Spawned{}, err
	}
	// The student's workspace is made before their server first starts,
	// owned by the uid the spawn resolved.
	opts := s.spawnOptions(cfg, uid)
	opts.Warm = action == ""
	opts.Prepare = func(ctx context.Context, uid, gid string) error {
		s.initWorkspace(ctx, co, student, uid, gid)
		return nil
	}
	sp, err := ctrs.Spawn(ctx, co, student, opts)
	if err == nil && sp.State != containers.Existing && action != "" {
		s.record(ctx, history.Record{Kind: history.KindAction, Course: course, Student: student,
			Action: action, Result: string(sp.State), Message: fmt.Sprintf("%s on port %d", sp.Name, sp.Port)})
	}
	return sp, err
}
