package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/site"
)

// opsCommands are the operators' commands: one student's server, course
// holds.
func opsCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		newStudentCmd(g, api.StudentStop, "Stop one student's server (their files stay)",
			`Stop stops STUDENT's server for COURSE; the files stay, and the next visit
starts it again.`),
		newStudentCmd(g, api.StudentRestart, "Restart one student's server",
			`Restart stops STUDENT's server for COURSE and starts it again, on the course's
current image (a stale container is replaced). Running kernels lose their state;
files stay.`),
		newStudentCmd(g, api.StudentRemove, "Remove one student's container (not their work)",
			`Remove stops and removes STUDENT's container for COURSE. Their work in
ROOT/students/STUDENT/COURSE is never touched, unless --workspace --yes is given:
then it is moved to ROOT/state/trash/COURSE/STUDENT/STAMP, kept 30 days, then
deleted by a container pass.`),
		newHoldCmd(g, true),
		newHoldCmd(g, false),
	}
}

// whoAmI names the operator for the history.
func whoAmI() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

func newStudentCmd(g *globals, action, short, long string) *cobra.Command {
	var req api.StudentRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   action + " COURSE STUDENT",
		Short: short,
		Long: long + `

A student whose server is active — by the rule the container pass uses: a busy
kernel, an open connection, recent activity, CPU use, a websocket through the
front door — is not acted on unless --force is given; the refusal says what the
server is doing. Through a running daemon this needs the API token.`,
		Example: fmt.Sprintf("  nbh-sync %s flotpython alice\n  nbh-sync %s flotpython alice --force", action, action),
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Workspace && !req.Yes {
				return errors.New("--workspace moves the student's work to the trash: confirm with --yes")
			}
			ctx := cmd.Context()
			req.By = whoAmI()
			var res api.StudentResult
			c, err := g.daemon(ctx)
			if err != nil {
				return err
			}
			if c != nil {
				path := "/api/students/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1]) + "/" + action
				if err := c.do(ctx, "POST", path, nil, req, &res); err != nil {
					return err
				}
			} else {
				s, done, err := g.openSite(true)
				if err != nil {
					return err
				}
				defer done()
				rep, err := s.Student(ctx, args[0], args[1], action, site.StudentOptions{Force: req.Force, Workspace: req.Workspace, By: req.By})
				if err != nil {
					return err
				}
				res = rep.StudentResult
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "%s/%s: %s\n", res.Course, res.Student, res.Result)
			if res.Forced != "" {
				fmt.Fprintf(g.stdout, "forced: the server was %s\n", res.Forced)
			}
			if res.Trash != "" {
				fmt.Fprintf(g.stdout, "workspace moved to %s (kept %s)\n", res.Trash, site.TrashRetention)
			}
			if res.Spawn != nil {
				fmt.Fprintf(g.stdout, "%s %s on port %d: %s\n", res.Spawn.Name, res.Spawn.State, res.Spawn.Port, res.Spawn.URL)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&req.Force, "force", false, "act even when the student's server is active")
	f.BoolVar(&asJSON, "json", false, "print one JSON document: {course, student, action, container, result, forced, trash, spawn}")
	if action == api.StudentRemove {
		f.BoolVar(&req.Workspace, "workspace", false, "also move the student's work for the course to the trash (needs --yes)")
		f.BoolVar(&req.Yes, "yes", false, "confirm --workspace")
	}
	return cmd
}

func newHoldCmd(g *globals, suspend bool) *cobra.Command {
	var req api.HoldRequest
	var asJSON bool
	name, short, long := "resume", "Lift a course's hold made by suspend",
		`Resume lifts the hold nbh-sync suspend put on COURSE: pulls, builds and
retirements of its containers start again (a daemon runs a sync at once). A hold
from courses.yaml (suspend: true) is lifted by a commit only.`
	if suspend {
		name, short, long = "suspend", "Put a course on hold: no pulls, builds or retirements",
			`Suspend puts COURSE on hold at run time: no pulls, builds or retirements of
its containers until nbh-sync resume COURSE, while its students are still served
(spawns work). The hold is recorded in the history and kept under ROOT/state, so
it outlives the daemon; status and the dashboard show it, plan marks what it
holds back (guard "suspended"). For a planned hold, prefer suspend: true in
courses.yaml.`
	}
	cmd := &cobra.Command{
		Use:     name + " COURSE",
		Short:   short,
		Long:    long,
		Example: "  nbh-sync " + name + " flotpython",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req.By = whoAmI()
			var holds []api.Hold
			c, err := g.daemon(ctx)
			if err != nil {
				return err
			}
			if c != nil {
				var res api.Holds
				if err := c.do(ctx, "POST", "/api/courses/"+url.PathEscape(args[0])+"/"+name, nil, req, &res); err != nil {
					return err
				}
				holds = res.Holds
			} else {
				s, done, err := g.openSite(true)
				if err != nil {
					return err
				}
				defer done()
				if suspend {
					holds, err = s.Suspend(ctx, args[0], req.By, req.Reason)
				} else {
					holds, err = s.Resume(ctx, args[0], req.By)
				}
				if err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, api.Holds{Holds: holds})
			}
			if len(holds) == 0 {
				fmt.Fprintln(g.stdout, "no course on hold")
			}
			for _, h := range holds {
				fmt.Fprintf(g.stdout, "%s: on hold (%s", h.Course, h.Source)
				if h.By != "" {
					fmt.Fprintf(g.stdout, ", by %s", h.By)
				}
				if !h.Since.IsZero() {
					fmt.Fprintf(g.stdout, ", since %s", h.Since.Format("2006-01-02 15:04 MST"))
				}
				fmt.Fprint(g.stdout, ")")
				if h.Reason != "" {
					fmt.Fprint(g.stdout, ": "+h.Reason)
				}
				fmt.Fprintln(g.stdout)
			}
			return nil
		},
	}
	if suspend {
		cmd.Flags().StringVar(&req.Reason, "reason", "", "why, for the history and the status")
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {holds: [{course, source, by, reason, since}]}")
	return cmd
}
