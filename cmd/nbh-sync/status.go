package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/shortid"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show courses, commits, images, build keys, containers and errors",
		Long: `Status shows the site as it is, without fetching or changing anything: the
config revision in force (and a rejected newer one), each course's branch,
checked-out commit and containers (running, stale: on an older image), each
image's build key and source, recent builds and actions, and errors.

It asks the daemon of --root (or of --api) when one runs, else reads ROOT and the
engine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var st api.Status
			c, derr := g.daemon(ctx)
			if derr != nil {
				return derr
			}
			if c != nil {
				if err := c.do(ctx, "GET", "/api/status", nil, nil, &st); err != nil {
					return err
				}
			} else {
				s, done, err := g.openSite(false)
				if err != nil {
					return err
				}
				defer done()
				if st, err = s.Status(ctx); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, st)
			}
			printStatus(g.stdout, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (the same as the daemon's /api/status)")
	return cmd
}

// workspacesText sums up a course's workspaces in a table cell.
func workspacesText(v api.WorkspacesView) string {
	t := fmt.Sprintf("%d", v.Count)
	if v.Behind > 0 {
		t += fmt.Sprintf(", %d behind", v.Behind)
	}
	if v.Conflicts > 0 {
		t += fmt.Sprintf(", %d with conflicts", v.Conflicts)
	}
	return t
}

func printStatus(w io.Writer, st api.Status) {
	fmt.Fprintf(w, "config revision %s\n", orDash(shortid.Of(st.Revision)))
	if !st.LastPass.IsZero() {
		fmt.Fprintf(w, "last pass %s ago\n", time.Since(st.LastPass).Round(time.Second))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOURSE\tBRANCH\tCOMMIT\tCHECKED\tIMAGE\tCONTAINERS\tRUNNING\tSTALE\tROLLOUT\tWORKSPACES")
	for _, c := range st.Courses {
		name := c.Name
		if c.Error != "" {
			name += " (error)"
		}
		if c.ImageError != "" {
			name += " (image failed)"
		}
		if c.Archived {
			name += " (archived)"
		}
		if c.Suspended != "" {
			name += " (suspended)"
		}
		checked := "-"
		if !c.Checked.IsZero() {
			checked = time.Since(c.Checked).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d%%\t%s\n", name, c.Branch, orDash(shortid.Of(c.Commit)), checked, c.Image, c.Containers, c.Running, c.Stale, c.Rollout(), workspacesText(c.Workspaces))
	}
	fmt.Fprintln(tw, "\nIMAGE\tBUILT ON\tBUILD KEY\tBUILT\tSOURCE")
	for _, im := range st.Images {
		built := "-"
		if !im.Built.IsZero() {
			built = im.Built.Local().Format("2006-01-02 15:04")
		}
		key := orDash(shortid.Of(im.BuildKey))
		if im.Pinned {
			key += " (pinned)"
		}
		switch {
		case im.Failed != nil && im.BuildKey != "":
			key += " (last build failed)"
		case im.Error != "":
			key = "(" + firstLine(im.Error) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", im.Name, orDash(cmp.Or(im.Base, im.From)), key, built, orDash(im.Source))
	}
	tw.Flush()
	for _, c := range st.Courses {
		if m := c.Workspaces.LastMerge; m != nil {
			fmt.Fprintf(w, "last merge in %s: %s, %s ago, %s — %s\n", c.Name, m.Student, time.Since(m.Time).Round(time.Second), m.Result, m.Message)
		}
	}
	for _, im := range st.Images {
		if f := im.Failed; f != nil && f.LogTail != "" {
			fmt.Fprintf(w, "\n--- %s: %s failed at %s; end of its log:\n  %s\n", im.Name, f.Stage, f.Time.Local().Format(time.DateTime), strings.ReplaceAll(f.LogTail, "\n", "\n  "))
		}
	}
	for _, c := range st.Courses {
		if !c.NextWarm.IsZero() || c.Warm > 0 {
			line := fmt.Sprintf("warm in %s: %d warm", c.Name, c.Warm)
			if c.WarmHeld > 0 {
				line += fmt.Sprintf(", %d held back by a cap (max or warm-max)", c.WarmHeld)
			}
			if c.WarmPending > 0 {
				line += fmt.Sprintf(", %d to start at the next pass", c.WarmPending)
			}
			if !c.NextWarm.IsZero() {
				line += ", next window " + c.NextWarm.Local().Format("Mon 2006-01-02 15:04")
			}
			fmt.Fprintln(w, line)
		}
	}
	if st.HeldPrune != "" {
		fmt.Fprintf(w, "\nHELD: %s\n", st.HeldPrune)
	}
	if len(st.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors:")
		for _, e := range st.Errors {
			fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(e, "\n", "\n  "))
		}
	}
}
