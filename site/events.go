package site

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/notify"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// This file turns what passes do into history records, notifications and
// metrics. Each sink is optional; none of them can fail a pass.

func (s *Site) record(ctx context.Context, r history.Record) {
	if s.opts.History == nil {
		return
	}
	// What a cancelled pass did (a build interrupted by SIGTERM) is worth
	// recording most of all: the record must not share the pass's fate.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.opts.History.Append(ctx, r); err != nil {
		s.log.WarnContext(ctx, "history not recorded", "kind", r.Kind, "err", err)
	}
}

func (s *Site) notify(ctx context.Context, ev notify.Event) {
	s.mu.Lock()
	n := s.notifier
	s.mu.Unlock()
	if n == nil {
		return
	}
	ev.Time = time.Now()
	// A slow webhook must not delay the pass; the notifier bounds each send.
	go n.Notify(context.WithoutCancel(ctx), ev)
}

func (s *Site) configEvents(ctx context.Context, res configrepo.Result, err error) {
	switch {
	case res.Rejected != nil:
		s.mu.Lock()
		seen := s.rejected != nil && s.rejected.Commit == res.Rejected.Commit
		s.mu.Unlock()
		if seen {
			return
		}
		msg := fmt.Sprintf("%d problems", len(res.Rejected.Problems))
		if len(res.Rejected.Problems) > 0 {
			msg = res.Rejected.Problems[0].String()
		}
		s.record(ctx, history.Record{Kind: history.KindConfig, Commit: res.Rejected.Commit.String(), Result: "rejected", Message: problems(res.Rejected)})
		s.notify(ctx, notify.Event{Kind: notify.ConfigRejected, Subject: "config", Message: msg})
	case res.Changed:
		s.record(ctx, history.Record{Kind: history.KindConfig, Commit: res.Current.Commit.String(), Result: "applied",
			Message: fmt.Sprintf("%d courses, %d warnings", len(res.Current.Config.Courses), len(res.Current.Warnings))})
		s.notify(ctx, notify.Event{Kind: notify.ConfigApplied, Subject: "config"})
	}
	if err != nil {
		if s.opts.Metrics != nil {
			s.opts.Metrics.GitError(gitwatch.NormalizeURL(s.loc.URL))
		}
		s.notify(ctx, notify.Event{Kind: notify.RemoteUnreachable, Subject: gitwatch.NormalizeURL(s.loc.URL), Message: err.Error()})
	}
}

func (s *Site) pullEvents(ctx context.Context, st gitwatch.Status, start time.Time) {
	remotes := map[string]string{} // remote → this pass's error, "" when fine
	pending := map[string]bool{}   // remotes whose fetch was still running
	for _, c := range st.Courses {
		key := gitwatch.NormalizeURL(c.Repo)
		failed := c.Error != "" && !c.ErrorAt.Before(start)
		pending[key] = pending[key] || (failed && c.Pending)
		switch {
		case failed:
			s.record(ctx, history.Record{Kind: history.KindPull, Course: c.Course, Commit: c.Commit.String(), Result: "failed", Message: c.Error})
			remotes[key] = c.Error
		case c.Changed:
			msg := "checked out"
			if c.Forced {
				msg = "checked out after a force-push"
			}
			s.record(ctx, history.Record{Kind: history.KindPull, Course: c.Course, Commit: c.Commit.String(), Result: "ok", Message: msg})
		}
		if _, seen := remotes[key]; !seen {
			remotes[key] = ""
		}
	}
	for key, msg := range remotes {
		switch {
		case msg == "":
			s.notify(ctx, notify.Event{Kind: notify.RemoteRecovered, Subject: key})
		case strings.Contains(msg, gitwatch.ErrBranchNotFound.Error()):
			// A deleted branch is the instructor's doing, not an outage.
		case pending[key]:
			// A slow fetch still running is no outage either: the next
			// pass uses what it brings.
		default:
			if s.opts.Metrics != nil {
				s.opts.Metrics.GitError(key)
			}
			s.notify(ctx, notify.Event{Kind: notify.RemoteUnreachable, Subject: key, Message: msg})
		}
	}
}

func (s *Site) buildEvents(ctx context.Context, cfg *manifest.Config, r images.Result, err error) {
	if !r.Built && err == nil {
		return // nothing ran: the key had a passed build already
	}
	// An image of one course (the usual course image) is that course's
	// news too: history --course finds it.
	course := ""
	if users := cfg.CoursesUsing(r.Image); len(users) == 1 {
		course = users[0]
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	msg := r.Source
	if err != nil {
		msg = err.Error()
	}
	s.record(ctx, history.Record{Kind: history.KindBuild, Image: r.Image, Course: course, BuildKey: r.Key, Result: result,
		Message: msg, Duration: r.Duration, Log: r.Log})
	if s.opts.Metrics != nil {
		s.opts.Metrics.ObserveBuild(r.Image, result, r.Duration)
	}
	if err != nil {
		s.notify(ctx, notify.Event{Kind: notify.BuildFailed, Subject: r.Image, Message: err.Error()})
	} else {
		s.notify(ctx, notify.Event{Kind: notify.BuildRecovered, Subject: r.Image})
	}
}

func (s *Site) actionEvents(ctx context.Context, outs []reconcile.Outcome) {
	for _, o := range outs {
		result, msg := "done", o.Action.Reason
		switch {
		case o.Err != nil:
			result, msg = "failed", o.Err.Error()
		case o.Skipped != "":
			result, msg = "skipped", o.Skipped
		}
		s.record(ctx, history.Record{Kind: history.KindAction, Course: o.Action.Course, Student: o.Action.Student,
			Action: string(o.Action.Kind), Result: result, Message: msg})
		if s.opts.Metrics != nil && o.Done {
			s.opts.Metrics.CountAction(string(o.Action.Kind), o.Action.Course)
		}
	}
}
