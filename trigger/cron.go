package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nbhosting/nbh-sync/manifest"
)

// Scheduler fires triggers on the cron schedules of courses.yaml (pull,
// reconcile, rebuild). Update swaps schedules when the config changes; a
// schedule whose expression did not change keeps its timing.
type Scheduler struct {
	fire func(k Kinds)
	log  *slog.Logger
	c    *cron.Cron

	mu      sync.Mutex
	entries map[Kinds]entry
	// warm are the passes fired at the start of warm windows, by cron
	// expression.
	warm map[string]cron.EntryID
}

type entry struct {
	spec string
	id   cron.EntryID
}

// NewScheduler returns a Scheduler that calls fire(kind) at each activation
// of a schedule; fire must not block (Queue.Trigger does not). loc is the
// time zone of the expressions (time.Local when nil).
func NewScheduler(fire func(k Kinds), loc *time.Location, logger *slog.Logger) *Scheduler {
	if loc == nil {
		loc = time.Local
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{
		fire:    fire,
		log:     logger,
		c:       cron.New(cron.WithParser(manifest.CronParser), cron.WithLocation(loc)),
		entries: map[Kinds]entry{},
		warm:    map[string]cron.EntryID{},
	}
}

// Update installs the schedules of sch. It checks every expression first
// and changes nothing when one is invalid (the config should have been
// rejected by validation already). An empty expression turns a schedule off.
func (s *Scheduler) Update(sch manifest.Schedules) error {
	want := map[Kinds]string{Pull: sch.Pull, Reconcile: sch.Reconcile, Rebuild: sch.Rebuild}
	parsed := map[Kinds]cron.Schedule{}
	for k, spec := range want {
		if spec == "" {
			continue
		}
		p, err := manifest.CronParser.Parse(spec)
		if err != nil {
			return fmt.Errorf("update schedules: %s %q: %w", k, spec, err)
		}
		parsed[k] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kn := range kindNames {
		k, spec := kn.k, want[kn.k]
		old, had := s.entries[k]
		if had && old.spec == spec {
			continue
		}
		if had {
			s.c.Remove(old.id)
			delete(s.entries, k)
		}
		if spec == "" {
			s.log.Info("schedule off", "kind", k.String())
			continue
		}
		id := s.c.Schedule(parsed[k], cron.FuncJob(func() {
			s.log.Debug("schedule fired", "kind", k.String())
			s.fire(k)
		}))
		s.entries[k] = entry{spec: spec, id: id}
		s.log.Info("schedule set", "kind", k.String(), "spec", spec)
	}
	return nil
}

// SetWarm fires a container pass at each start of the given warm windows
// (the cron expressions of the courses' warm:), so that a class's servers
// start when its window opens, not at the next scheduled pass. Like
// Update, it changes nothing when an expression is invalid, and keeps the
// entries whose expression is still there.
func (s *Scheduler) SetWarm(specs []string) error {
	parsed := map[string]cron.Schedule{}
	for _, spec := range specs {
		p, err := manifest.CronParser.Parse(spec)
		if err != nil {
			return fmt.Errorf("warm window %q: %w", spec, err)
		}
		parsed[spec] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for spec, id := range s.warm {
		if _, keep := parsed[spec]; !keep {
			s.c.Remove(id)
			delete(s.warm, spec)
		}
	}
	for spec, p := range parsed {
		if _, had := s.warm[spec]; had {
			continue
		}
		s.warm[spec] = s.c.Schedule(p, cron.FuncJob(func() {
			s.log.Debug("warm window opens", "spec", spec)
			s.fire(Reconcile)
		}))
	}
	return nil
}

// Next returns when each active schedule fires next (zero before Run).
func (s *Scheduler) Next() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for k, e := range s.entries {
		out[k.String()] = s.c.Entry(e.id).Next
	}
	return out
}

// Run runs the schedules until ctx is cancelled.
func (s *Scheduler) Run(ctx context.Context) {
	s.c.Start()
	<-ctx.Done()
	<-s.c.Stop().Done()
}
