// Package site ties the parts of nbh-sync into passes over one course site:
// pull (gitwatch), build (images), container pass (reconcile). The command
// line and the daemon both drive a Site; neither knows how the parts work.
package site

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nbhosting/nbh-sync/gitwatch"
)

// Options say where the site's desired state is and where its data lives.
type Options struct {
	// Config is the --config flag: a git URL, a bare repo, or a folder
	// inside a git work tree.
	Config string
	// Root is the data directory: mirrors, course work trees, state.
	Root string
	Log  *slog.Logger
}

// Site is one course site: its config repo, course repos, images and
// student containers.
type Site struct {
	opts    Options
	log     *slog.Logger
	loc     gitwatch.ConfigLocation
	mirrors *gitwatch.Mirrors
	loader  *gitwatch.ConfigLoader
	syncer  *gitwatch.Syncer

	mu  sync.Mutex
	rev *gitwatch.ConfigRevision // the config revision in force, once pulled
}

// New opens the site described by opts. It does no network work.
func New(opts Options) (*Site, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	loc, err := gitwatch.LocateConfig(opts.Config, "")
	if err != nil {
		return nil, err
	}
	m := gitwatch.NewMirrors(opts.Root, opts.Log, gitwatch.Options{})
	return &Site{
		opts:    opts,
		log:     opts.Log,
		loc:     loc,
		mirrors: m,
		loader:  gitwatch.NewConfigLoader(m, opts.Root, loc, nil, opts.Log),
		syncer:  gitwatch.NewSyncer(m, opts.Root, opts.Log, 0),
	}, nil
}

// Location is where the config repo is.
func (s *Site) Location() gitwatch.ConfigLocation { return s.loc }

// PullReport is what a pull did.
type PullReport struct {
	Config  gitwatch.ConfigResult `json:"-"`
	Courses gitwatch.Status       `json:"courses"`
}

// NoConfigError says that no valid config revision was ever seen, so there
// is nothing to apply.
type NoConfigError struct {
	Rejected *gitwatch.Rejection
	Err      error
}

func (e *NoConfigError) Error() string {
	var b strings.Builder
	b.WriteString("no valid config revision to apply")
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Rejected != nil {
		fmt.Fprintf(&b, "; commit %s was rejected:", e.Rejected.Commit.String()[:12])
		for _, p := range e.Rejected.Problems {
			b.WriteString("\n  " + p.String())
		}
	}
	return b.String()
}

func (e *NoConfigError) Unwrap() error { return e.Err }

// Pull fetches the config repo, applies its head if valid (else keeps the
// last good revision), then fetches every course repo and checks the
// courses out. Errors of single courses are joined in the error; the report
// is valid beside them.
func (s *Site) Pull(ctx context.Context) (PullReport, error) {
	res, err := s.loader.Load(ctx)
	if res.Current == nil {
		return PullReport{Config: res}, &NoConfigError{Rejected: res.Rejected, Err: err}
	}
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if res.Rejected != nil {
		errs = append(errs, fmt.Errorf("config commit %s rejected, still applying %s:\n%s",
			short(res.Rejected.Commit.String()), short(res.Current.Commit.String()), problems(res.Rejected)))
	}
	st, err := s.syncer.Sync(ctx, res.Current)
	if err != nil {
		errs = append(errs, err)
	}
	res.Current.Sources.Refresh()
	s.mu.Lock()
	s.rev = res.Current
	s.mu.Unlock()
	return PullReport{Config: res, Courses: st}, errors.Join(errs...)
}

func problems(r *gitwatch.Rejection) string {
	lines := make([]string, len(r.Problems))
	for i, p := range r.Problems {
		lines[i] = "  " + p.String()
	}
	return strings.Join(lines, "\n")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
