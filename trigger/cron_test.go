package trigger

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
)

func TestSchedulerUpdate(t *testing.T) {
	s := NewScheduler(func(Kinds) {}, time.UTC, nil)
	tests := []struct {
		name    string
		sch     manifest.Schedules
		wantErr bool
		want    []string
	}{
		{"set", manifest.Schedules{Pull: "@every 1m", Rebuild: "30 4 * * 0"}, false, []string{"pull", "rebuild"}},
		{"invalid changes nothing", manifest.Schedules{Pull: "@every 1m", Reconcile: "not cron"}, true, []string{"pull", "rebuild"}},
		{"six fields refused", manifest.Schedules{Pull: "0 */15 * * * *"}, true, []string{"pull", "rebuild"}},
		{"swap", manifest.Schedules{Reconcile: "*/15 * * * *"}, false, []string{"reconcile"}},
		{"off", manifest.Schedules{}, false, nil},
	}
	for _, tt := range tests {
		err := s.Update(tt.sch)
		if (err != nil) != tt.wantErr {
			t.Fatalf("%s: Update = %v", tt.name, err)
		}
		var got []string
		for _, kn := range kindNames {
			if _, ok := s.entries[kn.k]; ok {
				got = append(got, kn.name)
			}
		}
		if len(got) != len(tt.want) || len(s.c.Entries()) != len(tt.want) {
			t.Fatalf("%s: schedules %v (%d cron entries), want %v", tt.name, got, len(s.c.Entries()), tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("%s: schedules %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}

func TestSchedulerKeepsUnchangedEntry(t *testing.T) {
	s := NewScheduler(func(Kinds) {}, time.UTC, nil)
	if err := s.Update(manifest.Schedules{Pull: "@every 1m"}); err != nil {
		t.Fatal(err)
	}
	id := s.entries[Pull].id
	if err := s.Update(manifest.Schedules{Pull: "@every 1m", Rebuild: "@daily"}); err != nil {
		t.Fatal(err)
	}
	if s.entries[Pull].id != id {
		t.Error("an unchanged schedule was replaced (its timing would reset)")
	}
}

// TestSchedulerFiresIntoQueue is the real thing end to end: a cron
// schedule enqueues a pass. robfig/cron counts in whole seconds, so this
// takes about one.
func TestSchedulerFiresIntoQueue(t *testing.T) {
	rec := &recorder{}
	q := New(func(context.Context, Pass) error { return nil }, Options{Done: rec.done})
	start(t, q)
	var mu sync.Mutex
	var fired []Kinds
	s := NewScheduler(func(k Kinds) {
		mu.Lock()
		fired = append(fired, k)
		mu.Unlock()
		q.Trigger("site", k, "cron "+k.String())
	}, nil, nil)
	if err := s.Update(manifest.Schedules{Reconcile: "@every 1s"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	testenv.WaitFor(t, 10*time.Second, "a cron pass", func() bool { return rec.n() >= 1 })
	cancel()
	<-done
	p, err := rec.get(0)
	if err != nil || p.Kinds != Reconcile || p.Reasons[0] != "cron reconcile" {
		t.Errorf("pass = %+v, %v", p, err)
	}
	if next := s.Next()["reconcile"]; next.IsZero() {
		t.Error("Next has no time for reconcile")
	}
}

func TestSchedulerSetWarm(t *testing.T) {
	s := NewScheduler(func(Kinds) {}, time.UTC, nil)
	if err := s.SetWarm([]string{"50 7 * * mon", "0 14 * * 3"}); err != nil {
		t.Fatal(err)
	}
	id := s.warm["50 7 * * mon"]
	if err := s.SetWarm([]string{"50 7 * * mon", "not cron"}); err == nil {
		t.Fatal("an invalid window was taken")
	}
	if len(s.c.Entries()) != 2 {
		t.Fatalf("%d entries after a refused update, want 2", len(s.c.Entries()))
	}
	if err := s.SetWarm([]string{"50 7 * * mon"}); err != nil {
		t.Fatal(err)
	}
	if len(s.c.Entries()) != 1 || s.warm["50 7 * * mon"] != id {
		t.Errorf("entries %d (want 1), kept window replaced: %v", len(s.c.Entries()), s.warm["50 7 * * mon"] != id)
	}
	if err := s.SetWarm(nil); err != nil || len(s.c.Entries()) != 0 {
		t.Errorf("SetWarm(nil) = %v, %d entries left", err, len(s.c.Entries()))
	}
}
