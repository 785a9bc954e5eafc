package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/site"
)

func newPlanCmd(g *globals) *cobra.Command {
	var asJSON, detailed, allowMassPrune bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what a sync would do now — pulls, builds, container actions — doing nothing",
		Long: `Plan computes what a sync would do now and changes nothing the site serves: the
config revision it would apply (or reject), the courses whose checkout would
move, the images that would be built (and why: inputs changed, no build yet, a
base image rebuilt first — shown as one cascade: "nbhosting/scipy-notebook ...
→ then course-a, course-b (base changed)"), and every container action with its
reason. To see remote heads it fetches into
its mirrors under ROOT (a cache), but checks out, builds, stops and removes
nothing. A running daemon answers from what its last pull fetched, with no
network call.

With --detailed-exitcode the exit status is 0 when nothing would change, 2 when
something would, 1 on error (as terraform plan).`,
		Example: `  nbh-sync plan
  nbh-sync plan --json | jq '.actions[] | select(.kind != "keep")'
  nbh-sync plan --detailed-exitcode || echo "changes pending"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := g.plan(cmd.Context(), allowMassPrune)
			if asJSON {
				// Scripts get their document even when planning failed:
				// what could not be planned is in its errors.
				if jerr := printJSON(g.stdout, rep); jerr != nil {
					return jerr
				}
			} else {
				printPlan(g.stdout, *rep)
			}
			if err != nil {
				return err
			}
			if detailed && rep.Changes > 0 {
				return exitCode(exitChanges)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {config, pulls, builds, actions, workspaces, changes, errors}, errors included")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
	cmd.Flags().BoolVar(&allowMassPrune, "allow-mass-prune", false, "plan as if a mass prune were confirmed")
	return cmd
}

// plan gets the plan from the daemon, or computes it directly. The report
// is never nil: what could not be planned is in its Errors, and err.
func (g *globals) plan(ctx context.Context, allowMassPrune bool) (*api.Plan, error) {
	failed := func(err error) (*api.Plan, error) {
		return &api.Plan{Pulls: []api.PlanPull{}, Builds: []api.PlanBuild{}, Actions: []api.PlanAction{}, Workspaces: []api.PlanWorkspace{}, Errors: []string{err.Error()}}, err
	}
	c, derr := g.daemon(ctx)
	if derr != nil {
		return failed(derr)
	}
	if c != nil && !allowMassPrune {
		var rep api.Plan
		if err := c.do(ctx, "GET", "/api/plan", nil, nil, &rep); err != nil {
			return failed(err)
		}
		return &rep, nil
	}
	s, done, err := g.openSite(false)
	if err != nil {
		return failed(err)
	}
	defer done()
	// Working directly, plan fetches first: no daemon keeps the mirrors
	// fresh. A remote that cannot be reached is planned from its mirror.
	ferr := s.Fetch(ctx)
	rep, err := s.Plan(ctx, site.PassOptions{AllowMassPrune: allowMassPrune})
	if ferr != nil {
		rep.Errors = append(rep.Errors, ferr.Error())
	}
	return &rep, errors.Join(ferr, err)
}

func printPlan(w io.Writer, rep api.Plan) {
	switch rep.Config.Change {
	case "apply":
		fmt.Fprintf(w, "config  would apply %s\n", shortid.Of(rep.Config.Commit))
	case "rejected":
		fmt.Fprintf(w, "config  head %s would be REJECTED; %s stays applied:\n", shortid.Of(rep.Config.Rejected.Commit.String()), shortid.Of(rep.Config.Commit))
		for _, p := range rep.Config.Rejected.Problems {
			fmt.Fprintf(w, "          %s\n", manifest.Problem(p))
		}
	}
	for _, p := range rep.Pulls {
		fmt.Fprintf(w, "pull    %-20s %s -> %s\n", p.Course, orDash(shortid.Of(p.From)), shortid.Of(p.To))
	}
	for _, b := range rep.Builds {
		switch {
		case b.Action == "none":
		case len(b.Cascade) > 0:
			// A cascade reads as one line: the base, then what is on it.
			fmt.Fprintf(w, "%-7s %-20s %s → then %s (base changed)\n", b.Action, b.Image, b.Reason, strings.Join(b.Cascade, ", "))
		default:
			fmt.Fprintf(w, "%-7s %-20s %s\n", b.Action, b.Image, b.Reason)
		}
	}
	for _, a := range rep.Actions {
		if a.Kind != string(reconcile.Keep) {
			fmt.Fprintf(w, "%-7s %-30s %s\n", a.Kind, a.Container, a.Reason)
		}
	}
	for _, ws := range rep.Workspaces {
		if ws.Action != "none" {
			fmt.Fprintf(w, "%-7s %-30s %s\n", ws.Action, "workspace "+ws.Course+"/"+ws.Student, ws.Reason)
		}
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error   %s\n", e)
	}
	if rep.Changes == 0 {
		fmt.Fprintln(w, "no changes: the site is in line with git")
	} else {
		fmt.Fprintf(w, "%d changes\n", rep.Changes)
	}
}
