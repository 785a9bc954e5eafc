package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/site"
)

func newSyncCmd(g *globals) *cobra.Command {
	var force, allowMassPrune, asJSON bool
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Run one full pass (pull, build, container pass) and exit",
		Long: `Sync runs one full pass and exits:

  1. pull: fetch the config repo; apply its head if it validates (else keep the
     last good revision and report the rejection); fetch every course repo and
     check each course out under ROOT/courses/COURSE;
  2. build: every image whose build key has no passed build yet is built,
     smoke-tested and published as IMAGE:latest (--force: all, without cache);
  3. container pass: idle containers stopped, stale ones removed once idle,
     active students left alone; every action with its reason.

When a daemon runs on --root (it listens on ROOT/state/api.sock), or --api names
one, sync asks it for a pass instead and returns at once (--allow-mass-prune
confirms the held revision to it first). Exit status 1 when any part failed (the rest still ran).`,
		Example: `  nbh-sync sync --config https://git.example.org/site/config.git
  nbh-sync sync --force           # rebuild every image without cache`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, derr := g.daemon(ctx)
			if derr != nil {
				return derr
			}
			if c != nil {
				kinds := []string{"sync"}
				if force {
					kinds = []string{"sync", "rebuild"}
				}
				if allowMassPrune {
					// The daemon holds the revision until confirmed; its
					// next container pass acts on it.
					if err := c.do(ctx, "POST", "/api/confirm-prune", nil, api.ConfirmPruneRequest{}, nil); err != nil {
						return err
					}
					fmt.Fprintf(g.stderr, "mass prune confirmed to the daemon at %s\n", c.where)
				}
				var res api.SyncResult
				if err := c.do(ctx, "POST", "/api/sync", nil, api.SyncRequest{Kinds: kinds}, &res); err != nil {
					return err
				}
				if asJSON {
					// The daemon's answer: the pass is queued, not done.
					return printJSON(g.stdout, res)
				}
				fmt.Fprintf(g.stdout, "pass queued by the daemon at %s for %d courses; see nbh-sync status\n", c.where, len(res.Courses))
				return nil
			}
			s, done, err := g.openSite(true)
			if err != nil {
				return err
			}
			defer done()
			rep, err := s.Sync(ctx, site.SyncOptions{Force: force, PassOptions: site.PassOptions{AllowMassPrune: allowMassPrune}})
			if asJSON {
				if jerr := printJSON(g.stdout, rep); jerr != nil {
					return jerr
				}
			} else {
				printSync(g.stdout, rep)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild every image without the engine's cache")
	cmd.Flags().BoolVar(&allowMassPrune, "allow-mass-prune", false, "confirm a config revision that removes more than half of the courses")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON document (from a daemon: its answer, {courses})")
	return cmd
}

func printSync(w io.Writer, rep site.SyncReport) {
	p := rep.Pull
	if p.ConfigCommit != "" {
		state := "unchanged"
		if p.ConfigChanged {
			state = "applied"
		}
		fmt.Fprintf(w, "config  %s %s\n", shortid.Of(p.ConfigCommit), state)
	}
	if p.Rejected != nil {
		fmt.Fprintf(w, "config  %s REJECTED (%d problems)\n", shortid.Of(p.Rejected.Commit.String()), len(p.Rejected.Problems))
	}
	for _, c := range p.Courses {
		switch {
		case c.Error != "":
			fmt.Fprintf(w, "pull    %-20s FAILED: %s\n", c.Course, c.Error)
		case c.Changed:
			fmt.Fprintf(w, "pull    %-20s %s\n", c.Course, shortid.Of(c.Commit.String()))
		}
	}
	for _, b := range rep.Builds {
		switch {
		case b.Err != "":
			fmt.Fprintf(w, "build   %-20s FAILED: %s\n", b.Image, b.Err)
		case b.Built:
			fmt.Fprintf(w, "build   %-20s built %s in %s\n", b.Image, shortid.Of(b.Key), b.Duration.Round(time.Second))
		case b.Pinned:
			fmt.Fprintf(w, "build   %-20s pinned\n", b.Image)
		default:
			fmt.Fprintf(w, "build   %-20s up to date (%s)\n", b.Image, shortid.Of(b.Key))
		}
	}
	printOutcomes(w, rep.Pass)
}

func printOutcomes(w io.Writer, pass site.PassReport) {
	n := 0
	for _, a := range pass.Actions {
		if a.Kind == reconcile.Keep {
			continue
		}
		result := ""
		for _, o := range pass.Outcomes {
			if o.Action.ID == a.ID {
				switch {
				case o.Err != nil:
					result = " FAILED: " + o.Err.Error()
				case o.Skipped != "":
					result = " (skipped: " + o.Skipped + ")"
				}
			}
		}
		fmt.Fprintf(w, "%-7s %-30s %s%s\n", a.Kind, a.Container, a.Reason, result)
		n++
	}
	fmt.Fprintf(w, "pass    %d containers, %d actions\n", len(pass.Actions), n)
}
