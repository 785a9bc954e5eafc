package site

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/rootdir"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// warmConcurrency is how many warm-ups a pass starts at once: a server's
// start costs the engine a create, a start and the image's first reads,
// and students already working share that engine.
const warmConcurrency = 2

// expected returns the students expected in co's open warm window w,
// sorted and without duplicates: those with a spawn of the course in the
// site's history since now minus the look-back, or those of the list file
// in the course's checkout. Names that cannot be a student are left out.
func (s *Site) expected(ctx context.Context, co manifest.Course, w manifest.Warm, now time.Time) ([]string, error) {
	st, err := manifest.ParseWarmStudents(w.Students)
	if err != nil {
		return nil, err // validation rejects these
	}
	var names []string
	if st.File != "" {
		// Read within the checkout: a symlink the instructor commits
		// must not make the site read a file outside it.
		b, err := readInRoot(rootdir.Course(s.opts.Root, co.Name), filepath.FromSlash(st.File))
		if err != nil {
			return nil, fmt.Errorf("warm students of %s: %w", co.Name, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line != "" {
				names = append(names, line)
			}
		}
	} else {
		if s.opts.History == nil {
			return nil, fmt.Errorf("warm students of %s: recent() needs the site's history, and it has none", co.Name)
		}
		recs, err := s.opts.History.Query(ctx, history.Query{Kinds: []history.Kind{history.KindAction}, Course: co.Name,
			Since: now.Add(-st.Recent), Limit: history.DefaultMaxRecords})
		if err != nil {
			return nil, fmt.Errorf("warm students of %s: %w", co.Name, err)
		}
		for _, r := range recs {
			if r.Action == "spawn" {
				names = append(names, r.Student)
			}
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return naming.CheckStudent(n) != nil })
	slices.Sort(names)
	return slices.Compact(names), nil
}

func readInRoot(dir, name string) ([]byte, error) {
	f, err := os.OpenInRoot(dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// warmUp starts the servers of the plan's warm-ups, warmConcurrency at a
// time, as the front door would (same container, same workspace), and
// says what became of each. A failed warm-up costs the student nothing
// but the wait the window meant to spare them.
func (s *Site) warmUp(ctx context.Context, actions []reconcile.Action) []reconcile.Outcome {
	var todo []reconcile.Action
	for _, a := range actions {
		if a.Kind == reconcile.WarmUp {
			todo = append(todo, a)
		}
	}
	out := make([]reconcile.Outcome, len(todo))
	sem := make(chan struct{}, warmConcurrency)
	var wg sync.WaitGroup
	for i, a := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = reconcile.Outcome{Action: a}
			if err := ctx.Err(); err != nil {
				out[i].Err = err
				return
			}
			// Recorded by the pass as a "warm" action, not as a "spawn":
			// recent(N) counts the students who came, and a server started
			// for one who stays away must not keep them expected forever.
			sp, err := s.spawn(ctx, a.Course, a.Student, "", "")
			if err != nil {
				out[i].Err = fmt.Errorf("warm %s: %w", a.Container, err)
				s.log.WarnContext(ctx, "warm-up failed", "course", a.Course, "student", a.Student, "err", err)
				return
			}
			out[i].Done = true
			if s.opts.Warmed != nil {
				s.opts.Warmed(a.Course, a.Student, sp)
			}
			s.log.InfoContext(ctx, "container action", "course", a.Course, "container", sp.Name, "action", string(a.Kind), "reason", a.Reason)
		})
	}
	wg.Wait()
	return out
}

// WarmLeft reports whether the pass started warm-ups and left others to the
// next pass (guard warm-pace): the daemon runs that pass at once, so that a
// class is warmed at the engine's pace, a pass's share after another, not
// one share per scheduled pass (8 every 5 minutes would take an hour for
// 100 students). A pass whose warm-ups all failed leaves the rest to the
// schedule, so that a broken image does not keep passes running.
func (r PassReport) WarmLeft() bool {
	left := slices.ContainsFunc(r.Actions, func(a reconcile.Action) bool {
		return a.Kind == reconcile.Hold && a.Guard == reconcile.GuardWarmPace
	})
	return left && slices.ContainsFunc(r.Outcomes, func(o reconcile.Outcome) bool {
		return o.Action.Kind == reconcile.WarmUp && o.Done
	})
}
