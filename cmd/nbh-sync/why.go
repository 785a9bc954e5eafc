package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/naming"
)

func newWhyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "why COURSE [STUDENT]",
		Short: "Explain why a container or image is (or is not) about to be acted on",
		Long: `Why explains the decisions the next sync would take about COURSE: whether its
checkout would move, whether its image would be built (and why: where its
Dockerfile was found, which image it is built on), and, for each
of its containers (or STUDENT's only), the action and its reason — activity,
idle time, image staleness, lingering, freeze windows, guards; and for each
student's workspace (their own copy of the course), whether the pass would
merge the course's new commit into it now or once they are idle, and the
last operation on it (merge, reset, share) with its outcome.`,
		Example: `  nbh-sync why flotpython
  nbh-sync why flotpython alice`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := g.plan(cmd.Context(), false)
			w := whyOf(*rep, args)
			if asJSON {
				if jerr := printJSON(g.stdout, w); jerr != nil {
					return jerr
				}
			} else {
				printWhy(g.stdout, w)
			}
			if err != nil {
				return err
			}
			if len(w.Actions) == 0 && len(w.Workspaces) == 0 && len(args) == 2 {
				return fmt.Errorf("no container %s", naming.Container(args[0], args[1]))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {course, student, pull, build, actions, workspaces}")
	return cmd
}

// why is the part of a plan about one course (and student).
type why struct {
	Course  string           `json:"course"`
	Student string           `json:"student,omitempty"`
	Pull    *api.PlanPull    `json:"pull,omitempty"`
	Build   *api.PlanBuild   `json:"build,omitempty"`
	Actions []api.PlanAction `json:"actions"`
	// Workspaces are the students' copies of the course.
	Workspaces []api.PlanWorkspace `json:"workspaces"`
}

func whyOf(rep api.Plan, args []string) why {
	w := why{Course: args[0], Actions: []api.PlanAction{}, Workspaces: []api.PlanWorkspace{}}
	if len(args) == 2 {
		w.Student = args[1]
	}
	for i, p := range rep.Pulls {
		if p.Course == w.Course {
			w.Pull = &rep.Pulls[i]
		}
	}
	for _, a := range rep.Actions {
		if a.Course == w.Course && (w.Student == "" || a.Student == w.Student) {
			w.Actions = append(w.Actions, a)
		}
	}
	for _, ws := range rep.Workspaces {
		if ws.Course == w.Course && (w.Student == "" || ws.Student == w.Student) {
			w.Workspaces = append(w.Workspaces, ws)
		}
	}
	for i, b := range rep.Builds {
		if slices.Contains(b.Courses, w.Course) {
			w.Build = &rep.Builds[i]
		}
	}
	return w
}

func printWhy(w io.Writer, y why) {
	if y.Pull != nil {
		fmt.Fprintf(w, "pull: %s would move %s -> %s\n", y.Course, orDash(shortid.Of(y.Pull.From)), shortid.Of(y.Pull.To))
	} else {
		fmt.Fprintf(w, "pull: %s is at its branch head\n", y.Course)
	}
	if b := y.Build; b != nil {
		fmt.Fprintf(w, "image %s: %s — %s\n", b.Image, b.Action, b.Reason)
		if b.Dockerfile != "" {
			fmt.Fprintf(w, "  Dockerfile: %s\n", b.Dockerfile)
		}
		if b.Base != "" {
			fmt.Fprintf(w, "  built on: %s\n", b.Base)
		}
		if len(b.Cascade) > 0 {
			fmt.Fprintf(w, "  then rebuilt on it: %s\n", strings.Join(b.Cascade, ", "))
		}
	}
	if len(y.Actions) == 0 {
		fmt.Fprintln(w, "no containers")
	}
	for _, a := range y.Actions {
		fmt.Fprintf(w, "%s: %s — %s\n", a.Container, a.Kind, a.Reason)
	}
	for _, ws := range y.Workspaces {
		at := shortid.Of(ws.Commit)
		if ws.To != "" {
			at += " -> " + shortid.Of(ws.To)
		}
		fmt.Fprintf(w, "workspace of %s (%s, at %s): %s — %s\n", ws.Student, orDash(ws.Mode), orDash(at), ws.Action, ws.Reason)
		if l := ws.Last; l != nil {
			fmt.Fprintf(w, "  last %s %s ago: %s — %s\n", l.Op, time.Since(l.Time).Round(time.Second), l.Result, l.Message)
		}
	}
}
