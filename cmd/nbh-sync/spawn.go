package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/containers"
)

func newSpawnCmd(g *globals) *cobra.Command {
	var asJSON bool
	var uid int
	var nb string
	cmd := &cobra.Command{
		Use:   "spawn COURSE STUDENT",
		Short: "Ensure a student's container runs and print where it answers",
		Long: `Spawn makes sure STUDENT has a running container for COURSE: a
running one is used as is; a stopped one is started, unless its image is stale,
then it is replaced; a missing one is created from the course's current image.
The student's work directory ROOT/students/STUDENT/COURSE is created if missing.
It returns once the Jupyter server answers: name, state (existing, started,
created), host port, URL and the server's Jupyter token (open URL?token=TOKEN).
When a daemon that runs the students' front door (run --proxy-listen) answers,
it also prints the launch URL: the server through the front door, with a
ticket that lets one browser in, once, within a minute.

--path opens a notebook (a deep link): a path relative to the server's root,
clean, with no "..". The URLs then land on it, in the course's notebook
interface (ui: in courses.yaml): notebooks/PATH in the classic notebook,
lab/tree/PATH in JupyterLab; with ui: auto, the running server says which.

{uid} is the uid of the host account named STUDENT, or --uid.`,
		Example: `  nbh-sync spawn flotpython alice
  nbh-sync spawn flotpython alice --path w1/intro.ipynb
  nbh-sync spawn flotpython alice --uid 1001 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var res spawnOutput
			c, derr := g.daemon(ctx)
			if derr != nil {
				return derr
			}
			if c != nil {
				req := api.SpawnRequest{Course: args[0], Student: args[1], Path: nb}
				if cmd.Flags().Changed("uid") {
					req.UID = &uid
				}
				var r api.SpawnResult
				if err := c.do(ctx, "POST", "/api/spawn", nil, req, &r); err != nil {
					return err
				}
				res = spawnOutput{Spawned: containers.Spawned{Name: r.Name, ID: r.ID, State: containers.SpawnState(r.State),
					Port: r.Port, URL: r.URL, Host: r.Host, Token: r.Token},
					Open: r.Open, LaunchURL: r.LaunchURL}
			} else {
				s, done, err := g.openSite(true)
				if err != nil {
					return err
				}
				defer done()
				u := ""
				if cmd.Flags().Changed("uid") {
					u = strconv.Itoa(uid)
				}
				if nb != "" {
					res.Spawned, res.Open, err = s.Open(ctx, args[0], args[1], u, nb)
				} else {
					res.Spawned, err = s.Spawn(ctx, args[0], args[1], u)
				}
				if err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			open := res.URL + res.Open
			if res.Token != "" {
				open += "?token=" + res.Token
			}
			fmt.Fprintf(g.stdout, "%s %s on port %d: %s\n", res.Name, res.State, res.Port, open)
			if res.LaunchURL != "" {
				fmt.Fprintf(g.stdout, "launch (once, within a minute): %s\n", res.LaunchURL)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {name, id, state, port, url, host, token, open, launch_url}")
	cmd.Flags().StringVar(&nb, "path", "", "a notebook to open, relative to the server's root (e.g. w1/intro.ipynb)")
	cmd.Flags().IntVar(&uid, "uid", -1, "uid to run the student's server as (default: the host account's, else the one the site allocated with students.uids; never below students.min-uid)")
	return cmd
}

// spawnOutput is what spawn prints: the container handed out and, from a
// daemon that runs the front door, the launch URL.
type spawnOutput struct {
	containers.Spawned
	// Open is where the notebook of --path opens, under URL.
	Open      string `json:"open,omitempty"`
	LaunchURL string `json:"launch_url,omitempty"`
}
