package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nbhosting/nbh-sync/rootdir"
)

// clock is a settable clock for retention tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func open(t testing.TB, opt Options) (*Store, string) {
	t.Helper()
	path := rootdir.History(t.TempDir())
	s, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func TestAppendQueryFilters(t *testing.T) {
	ck := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := open(t, Options{Now: ck.Now})
	ctx := t.Context()
	in := []Record{
		{Kind: KindPull, Course: "a", Commit: "c1", Result: "ok"},
		{Kind: KindBuild, Course: "a", Image: "a", Result: "failed", Log: "step 1\nboom"},
		{Kind: KindAction, Course: "b", Student: "s1", Action: "stop", Message: "idle 3h"},
		{Kind: KindConfig, Commit: "c9", Result: "rejected", Message: "courses.yaml:3:1: bad"},
		{Kind: KindError, Course: "b", Message: "engine down"},
	}
	for _, r := range in {
		ck.Add(time.Minute)
		if _, err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		q    Query
		want []uint64
	}{
		{"all newest first", Query{}, []uint64{5, 4, 3, 2, 1}},
		{"limit", Query{Limit: 2}, []uint64{5, 4}},
		{"kind", Query{Kinds: []Kind{KindBuild, KindPull}}, []uint64{2, 1}},
		{"course", Query{Course: "b"}, []uint64{5, 3}},
		{"image", Query{Image: "a"}, []uint64{2}},
		{"since", Query{Since: ck.Now().Add(-2 * time.Minute)}, []uint64{5, 4, 3}},
		{"course and kind", Query{Course: "a", Kinds: []Kind{KindAction}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Query(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, r := range got {
				ids = append(ids, r.ID)
				if r.Log != "" {
					t.Errorf("record %d carries its log without WithLog", r.ID)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
	got, err := s.Query(ctx, Query{Kinds: []Kind{KindBuild}, WithLog: true})
	if err != nil || len(got) != 1 || got[0].Log != "step 1\nboom" {
		t.Fatalf("build with log = %+v, %v", got, err)
	}
	if !got[0].Time.Equal(time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)) {
		t.Errorf("time = %v", got[0].Time)
	}
}

func TestLogCappedKeepsTail(t *testing.T) {
	s, _ := open(t, Options{MaxLog: 100})
	// 401 bytes: the cut at byte 301 falls inside "é".
	log := strings.Repeat("x", 300) + "é" + strings.Repeat("y", 84) + "\nERROR: the end"
	if _, err := s.Append(t.Context(), Record{Kind: KindBuild, Log: log}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Query(t.Context(), Query{WithLog: true})
	if err != nil {
		t.Fatal(err)
	}
	l := got[0].Log
	if !strings.HasSuffix(l, "ERROR: the end") || !strings.HasPrefix(l, "[... ") || len(l) > 140 {
		t.Errorf("capped log = %q (%d bytes)", l, len(l))
	}
	if !utf8.ValidString(l) {
		t.Errorf("capped log split a character: %q", l)
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name       string
		maxAge     time.Duration
		maxRecords int
		step       time.Duration
		n          int
		wantIDs    []uint64
	}{
		{"by count", -1, 3, time.Minute, 6, []uint64{6, 5, 4}},
		{"by age", 10 * time.Minute, -1, 4 * time.Minute, 6, []uint64{6, 5, 4}},
		{"both", 10 * time.Minute, 2, time.Minute, 6, []uint64{6, 5}},
		{"none", -1, -1, time.Hour, 4, []uint64{4, 3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			s, _ := open(t, Options{MaxAge: tt.maxAge, MaxRecords: tt.maxRecords, Now: ck.Now})
			for i := 0; i < tt.n; i++ {
				ck.Add(tt.step)
				if _, err := s.Append(t.Context(), Record{Kind: KindBuild, Log: "log"}); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Query(t.Context(), Query{Limit: 100, WithLog: true})
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.wantIDs) {
				t.Errorf("kept %v, want %v", ids, tt.wantIDs)
			}
			if n, _ := s.Len(); n != len(tt.wantIDs) {
				t.Errorf("Len = %d, want %d", n, len(tt.wantIDs))
			}
		})
	}
}

func TestPruneWhenQuiet(t *testing.T) {
	ck := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := open(t, Options{MaxAge: time.Hour, Now: ck.Now})
	for i := 0; i < 3; i++ {
		if _, err := s.Append(t.Context(), Record{Kind: KindPull}); err != nil {
			t.Fatal(err)
		}
	}
	ck.Add(2 * time.Hour)
	n, err := s.Prune(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want 3", n, err)
	}
	if l, _ := s.Len(); l != 0 {
		t.Errorf("Len after prune = %d", l)
	}
}

func TestConcurrentAppend(t *testing.T) {
	s, _ := open(t, Options{MaxRecords: 50})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := s.Append(t.Context(), Record{Kind: KindAction, Course: fmt.Sprint(g)}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Query(t.Context(), Query{Limit: 5}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := s.Len(); n != 50 {
		t.Errorf("Len = %d, want 50", n)
	}
	got, _ := s.Query(t.Context(), Query{Limit: 1})
	if got[0].ID != 160 {
		t.Errorf("newest ID = %d, want 160", got[0].ID)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	_, path := open(t, Options{})
	for _, ro := range []bool{false, true} {
		start := time.Now()
		_, err := Open(path, Options{ReadOnly: ro, OpenTimeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrLocked) {
			t.Fatalf("second open (read-only %v) = %v, want ErrLocked", ro, err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "daemon") {
			t.Errorf("message is not clear: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("open waited %v", time.Since(start))
		}
	}
}

func TestReadOnlyAfterClose(t *testing.T) {
	s, path := open(t, Options{})
	if _, err := s.Append(t.Context(), Record{Kind: KindPull, Course: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	// Readers share the lock.
	r2, err := Open(path, Options{ReadOnly: true, OpenTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	defer r2.Close()
	got, err := r1.Query(t.Context(), Query{})
	if err != nil || len(got) != 1 || got[0].Course != "a" {
		t.Fatalf("read-only query = %+v, %v", got, err)
	}
	if _, err := r1.Append(t.Context(), Record{Kind: KindPull}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("append on read-only = %v", err)
	}
}

func TestReadOnlyMissingFile(t *testing.T) {
	path := rootdir.History(t.TempDir())
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a missing store succeeded")
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := open(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Append(ctx, Record{Kind: KindPull}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v", err)
	}
	if _, err := s.Query(ctx, Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Query = %v", err)
	}
}
