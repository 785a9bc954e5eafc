package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/share"
)

func newResetCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reset COURSE STUDENT PATH",
		Short: "Give a student the course's version of one file back, theirs kept beside it",
		Long: `Reset puts the course's current version of PATH (a path in the student's
work folder, ROOT/students/STUDENT/COURSE) back in place. The student's own
version, when it differs, is kept beside it as "NAME (mine DATE TIME).EXT";
nothing is lost, and the backup the reset takes can undo it. A file the
student deleted simply comes back.`,
		Example: `  nbh-sync reset flotpython alice w1/w1-s1-c1-variables.ipynb`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ResetRequest{Course: args[0], Student: args[1], Path: args[2]}
			res, err := g.reset(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			if res.Beside != "" {
				fmt.Fprintf(g.stdout, "%s: the course's version is back; the student's is beside it as %s\n", res.Path, res.Beside)
			} else {
				fmt.Fprintf(g.stdout, "%s: the course's version is in place\n", res.Path)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {path, beside, backup}")
	return cmd
}

// reset asks the daemon, or works directly on the site.
func (g *globals) reset(ctx context.Context, req api.ResetRequest) (api.ResetResult, error) {
	c, err := g.daemon(ctx)
	if err != nil {
		return api.ResetResult{}, err
	}
	var res api.ResetResult
	if c != nil {
		err := c.do(ctx, "POST", "/api/reset", nil, req, &res)
		return res, err
	}
	s, done, err := g.openSite(true)
	if err != nil {
		return res, err
	}
	defer done()
	rep, err := s.Reset(ctx, req.Course, req.Student, req.Path)
	if err != nil {
		return res, err
	}
	res = api.ResetResult{Path: req.Path, Backup: rep.Backup}
	for _, c := range rep.Conflicts {
		res.Beside = c.Beside
	}
	return res, nil
}

func newShareCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "share COURSE STUDENT PATH",
		Short: "Make a read-only HTML snapshot of a student's notebook, and print its address",
		Long: `Share converts the notebook PATH of the student's work folder to HTML with
nbconvert, inside the student's own container and as the student (the
server is started if it is not running), and keeps the snapshot under an
unguessable token. The front door (run --proxy-listen) serves it read-only
at /share/TOKEN to whoever has the link, in a sandbox: no script of the
notebook runs.`,
		Example: `  nbh-sync share flotpython alice w1/w1-s1-c1-variables.ipynb`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req := api.ShareRequest{Course: args[0], Student: args[1], Path: args[2]}
			var res api.ShareResult
			c, err := g.daemon(ctx)
			if err != nil {
				return err
			}
			if c != nil {
				if err := c.do(ctx, "POST", "/api/share", nil, req, &res); err != nil {
					return err
				}
			} else {
				s, done, err := g.openSite(true)
				if err != nil {
					return err
				}
				defer done()
				if res.Token, res.Size, err = s.Share(ctx, req.Course, req.Student, req.Path); err != nil {
					return err
				}
				res.URL = share.Prefix + res.Token
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "%s shared (%d bytes): %s\n", req.Path, res.Size, res.URL)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {token, url, size}")
	return cmd
}
