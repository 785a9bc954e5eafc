package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/daemon"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
)

// openSite opens the site for a command that works directly (no daemon).
// With record, what the command does goes to the history store, unless a
// daemon holds it. Without record, an existing history store is opened
// read-only.
func (g *globals) openSite(record bool) (*site.Site, func(), error) {
	root, err := filepath.Abs(g.root)
	if err != nil {
		return nil, nil, err
	}
	if err := daemon.PrepareRoot(root, g.log); err != nil {
		return nil, nil, err
	}
	creds, err := g.configCredentials()
	if err != nil {
		return nil, nil, err
	}
	var hist *history.Store
	switch {
	case record:
		hist, err = history.Open(history.Path(root), history.Options{})
		if err != nil {
			g.log.Warn("this run is not recorded in the history", "err", err)
			hist = nil
		}
	case fileExists(history.Path(root)):
		// Read-only, for the recent builds and actions a status shows.
		if hist, err = history.Open(history.Path(root), history.Options{ReadOnly: true}); err != nil {
			g.log.Info("history not shown", "err", err)
			hist = nil
		}
	}
	s, err := site.New(site.Options{Config: g.config, ConfigCredentials: creds, SafeDirectories: g.safeDirs, Root: root, Log: g.log, History: hist})
	closeAll := func() {
		if hist != nil {
			hist.Close()
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return s, closeAll, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

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
one, sync asks it for a pass instead and returns at once. Exit status 1 when any part failed (the rest still ran).`,
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
				var res server.SyncResult
				if err := c.do(ctx, "POST", "/api/sync", nil, server.SyncRequest{Kinds: kinds}, &res); err != nil {
					return err
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON document")
	return cmd
}

func printSync(w io.Writer, rep site.SyncReport) {
	p := rep.Pull
	if p.ConfigCommit != "" {
		state := "unchanged"
		if p.ConfigChanged {
			state = "applied"
		}
		fmt.Fprintf(w, "config  %s %s\n", shortID(p.ConfigCommit), state)
	}
	if p.Rejected != nil {
		fmt.Fprintf(w, "config  %s REJECTED (%d problems)\n", shortID(p.Rejected.Commit.String()), len(p.Rejected.Problems))
	}
	for _, c := range p.Courses {
		switch {
		case c.Error != "":
			fmt.Fprintf(w, "pull    %-20s FAILED: %s\n", c.Course, c.Error)
		case c.Changed:
			fmt.Fprintf(w, "pull    %-20s %s\n", c.Course, shortID(c.Commit.String()))
		}
	}
	for _, b := range rep.Builds {
		switch {
		case b.Err != "":
			fmt.Fprintf(w, "build   %-20s FAILED: %s\n", b.Image, b.Err)
		case b.Built:
			fmt.Fprintf(w, "build   %-20s built %s in %s\n", b.Image, shortID(b.Key), b.Duration.Round(time.Second))
		case b.Pinned:
			fmt.Fprintf(w, "build   %-20s pinned\n", b.Image)
		default:
			fmt.Fprintf(w, "build   %-20s up to date (%s)\n", b.Image, shortID(b.Key))
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

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

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
			var st server.Status
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

func printStatus(w io.Writer, st server.Status) {
	fmt.Fprintf(w, "config revision %s\n", orDash(shortID(st.Revision)))
	if !st.LastPass.IsZero() {
		fmt.Fprintf(w, "last pass %s ago\n", time.Since(st.LastPass).Round(time.Second))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCOURSE\tBRANCH\tCOMMIT\tCHECKED\tIMAGE\tCONTAINERS\tRUNNING\tSTALE\tROLLOUT")
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
		checked := "-"
		if !c.Checked.IsZero() {
			checked = time.Since(c.Checked).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d%%\n", name, c.Branch, orDash(shortID(c.Commit)), checked, c.Image, c.Containers, c.Running, c.Stale, c.Rollout())
	}
	fmt.Fprintln(tw, "\nIMAGE\tBUILT ON\tBUILD KEY\tBUILT\tSOURCE")
	for _, im := range st.Images {
		built := "-"
		if !im.Built.IsZero() {
			built = im.Built.Local().Format("2006-01-02 15:04")
		}
		key := orDash(shortID(im.BuildKey))
		if im.Pinned {
			key += " (pinned)"
		}
		switch {
		case im.Failed != nil && im.BuildKey != "":
			key += " (last build failed)"
		case im.Error != "":
			key = "(" + firstLine(im.Error) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", im.Name, orDash(im.Base), key, built, orDash(im.Source))
	}
	tw.Flush()
	for _, im := range st.Images {
		if f := im.Failed; f != nil && f.LogTail != "" {
			fmt.Fprintf(w, "\n--- %s: %s failed at %s; end of its log:\n  %s\n", im.Name, f.Stage, f.Time.Local().Format(time.DateTime), strings.ReplaceAll(f.LogTail, "\n", "\n  "))
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {config, pulls, builds, actions, changes, errors}, errors included")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when it has none")
	cmd.Flags().BoolVar(&allowMassPrune, "allow-mass-prune", false, "plan as if a mass prune were confirmed")
	return cmd
}

// plan gets the plan from the daemon, or computes it directly. The report
// is never nil: what could not be planned is in its Errors, and err.
func (g *globals) plan(ctx context.Context, allowMassPrune bool) (*site.PlanReport, error) {
	failed := func(err error) (*site.PlanReport, error) {
		return &site.PlanReport{Pulls: []site.PlanPull{}, Builds: []site.PlanBuild{}, Actions: []reconcile.Action{}, Errors: []string{err.Error()}}, err
	}
	c, derr := g.daemon(ctx)
	if derr != nil {
		return failed(derr)
	}
	if c != nil && !allowMassPrune {
		var rep site.PlanReport
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

func printPlan(w io.Writer, rep site.PlanReport) {
	switch rep.Config.Change {
	case "apply":
		fmt.Fprintf(w, "config  would apply %s\n", shortID(rep.Config.Commit))
	case "rejected":
		fmt.Fprintf(w, "config  head %s would be REJECTED; %s stays applied:\n", shortID(rep.Config.Rejected.Commit.String()), shortID(rep.Config.Commit))
		for _, p := range rep.Config.Rejected.Problems {
			fmt.Fprintf(w, "          %s\n", p)
		}
	}
	for _, p := range rep.Pulls {
		fmt.Fprintf(w, "pull    %-20s %s -> %s\n", p.Course, orDash(shortID(p.From)), shortID(p.To))
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
		if a.Kind != reconcile.Keep {
			fmt.Fprintf(w, "%-7s %-30s %s\n", a.Kind, a.Container, a.Reason)
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

func newBuildCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "build IMAGE",
		Short: "Build or rebuild one image now, streaming its log",
		Long: `Build pulls the config and course repos, then builds IMAGE if its build key
(a digest of its Dockerfile's folder, the start script, the build args and the
keys of the site images it is built FROM) has no passed build yet — or always,
without cache, with --force. Site images it is built FROM are brought up to date
first. A recent failure of the same inputs is retried at once.
The new build is smoke-tested before IMAGE:latest moves to it; a failed build or
smoke test leaves the previous IMAGE:latest serving. The log streams to stdout.`,
		Example: `  nbh-sync build flotpython
  nbh-sync build datascience --force`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, done, err := g.openSite(true)
			if err != nil {
				return err
			}
			defer done()
			if _, err := s.Pull(ctx); err != nil {
				var nc *site.NoConfigError
				if errors.As(err, &nc) {
					return err
				}
				g.log.Warn("pull incomplete", "err", err)
			}
			res, err := s.Build(ctx, args[0], force, g.stdout)
			if err != nil {
				return err
			}
			switch {
			case res.Built:
				fmt.Fprintf(g.stdout, "built %s:%s (%s) in %s; %s:latest serves it\n", res.Image, shortID(res.Key), shortID(strings.TrimPrefix(res.ImageID, "sha256:")), res.Duration.Round(time.Second), res.Image)
			case res.Pinned:
				fmt.Fprintf(g.stdout, "%s is pinned; %s:latest serves the pinned build\n", res.Image, res.Image)
			default:
				fmt.Fprintf(g.stdout, "%s is up to date: build %s exists (use --force to rebuild)\n", res.Image, shortID(res.Key))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild without the engine's cache even if the build key has a build")
	return cmd
}

func newSpawnCmd(g *globals) *cobra.Command {
	var asJSON bool
	var uid int
	cmd := &cobra.Command{
		Use:   "spawn COURSE STUDENT",
		Short: "Ensure a student's container runs and print where it answers",
		Long: `Spawn makes sure STUDENT has a running container for COURSE: a
running one is used as is; a stopped one is started, unless its image is stale,
then it is replaced; a missing one is created from the course's current image.
The student's work directory ROOT/students/STUDENT/COURSE is created if missing.
It returns once the Jupyter server answers: name, state (existing, started,
created), host port, URL and the server's Jupyter token (open URL?token=TOKEN).

{uid} is the uid of the host account named STUDENT, or --uid.`,
		Example: `  nbh-sync spawn flotpython alice
  nbh-sync spawn flotpython alice --uid 1001 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var res containers.Spawned
			c, derr := g.daemon(ctx)
			if derr != nil {
				return derr
			}
			if c != nil {
				req := server.SpawnRequest{Course: args[0], Student: args[1]}
				if cmd.Flags().Changed("uid") {
					req.UID = &uid
				}
				var r server.SpawnResult
				if err := c.do(ctx, "POST", "/api/spawn", nil, req, &r); err != nil {
					return err
				}
				res = containers.Spawned{Name: r.Name, State: containers.SpawnState(r.State), Port: r.Port, URL: r.URL, Token: r.Token}
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
				if res, err = s.Spawn(ctx, args[0], args[1], u); err != nil {
					return err
				}
			}
			if asJSON {
				return printJSON(g.stdout, res)
			}
			open := res.URL
			if res.Token != "" {
				open += "?token=" + res.Token
			}
			fmt.Fprintf(g.stdout, "%s %s on port %d: %s\n", res.Name, res.State, res.Port, open)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {name, id, state, port, url, token}")
	cmd.Flags().IntVar(&uid, "uid", -1, "uid to run the student's server as (default: the host account's)")
	return cmd
}

func newHistoryCmd(g *globals) *cobra.Command {
	var asJSON, withLog bool
	var kinds []string
	var course, image, since string
	var limit int
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Show past pulls, builds and actions, newest first",
		Long: `History lists what nbh-sync did — pulls, builds (with their logs under --log),
container actions with their reasons, config revisions applied or rejected,
errors — newest first, from the store in ROOT/state/history.db (or the running
daemon's API).`,
		Example: `  nbh-sync history --kind build --limit 5 --log
  nbh-sync history --course flotpython --since 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var recs []history.Record
			c, derr := g.daemon(ctx)
			if derr != nil {
				return derr
			}
			if c != nil {
				q := url.Values{}
				if len(kinds) > 0 {
					q.Set("kind", strings.Join(kinds, ","))
				}
				for k, v := range map[string]string{"course": course, "image": image, "since": since} {
					if v != "" {
						q.Set(k, v)
					}
				}
				q.Set("limit", strconv.Itoa(limit))
				if withLog {
					q.Set("log", "true")
				}
				var out struct {
					Records []history.Record `json:"records"`
				}
				if err := c.do(ctx, "GET", "/api/history", q, nil, &out); err != nil {
					return err
				}
				recs = out.Records
			} else {
				q := history.Query{Course: course, Image: image, Limit: limit, WithLog: withLog}
				for _, k := range kinds {
					if !history.Kind(k).Valid() {
						return fmt.Errorf("--kind %q: want one of %v", k, history.Kinds)
					}
					q.Kinds = append(q.Kinds, history.Kind(k))
				}
				if since != "" {
					d, err := time.ParseDuration(since)
					if err != nil {
						return fmt.Errorf("--since %q: want a duration such as 24h", since)
					}
					q.Since = time.Now().Add(-d)
				}
				root, _ := filepath.Abs(g.root)
				st, err := history.Open(history.Path(root), history.Options{ReadOnly: true})
				switch {
				case errors.Is(err, fs.ErrNotExist):
					g.log.Info("no history yet: nothing has run with this --root", "root", root)
				case err != nil:
					return err
				default:
					defer st.Close()
					if recs, err = st.Query(ctx, q); err != nil {
						return err
					}
				}
			}
			if recs == nil {
				recs = []history.Record{}
			}
			if asJSON {
				return printJSON(g.stdout, map[string]any{"records": recs})
			}
			printHistory(g.stdout, recs)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, `print one JSON document: {"records": [...]}`)
	f.BoolVar(&withLog, "log", false, "include build logs")
	f.StringSliceVar(&kinds, "kind", nil, "only these kinds: pull, build, action, config, error")
	f.StringVar(&course, "course", "", "only this course")
	f.StringVar(&image, "image", "", "only this image")
	f.StringVar(&since, "since", "", "only newer than this duration ago (e.g. 24h)")
	f.IntVar(&limit, "limit", history.DefaultLimit, "at most this many records")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"pull", "build", "action", "config", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func printHistory(w io.Writer, recs []history.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tSUBJECT\tRESULT\tMESSAGE")
	for _, r := range recs {
		subject := r.Course
		if r.Student != "" {
			subject = containers.Name(r.Course, r.Student)
		}
		if r.Image != "" {
			subject = r.Image
		}
		kind := string(r.Kind)
		if r.Action != "" {
			kind += ":" + r.Action
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Time.Local().Format("2006-01-02 15:04:05"), kind, orDash(subject), orDash(r.Result), firstLine(r.Message))
	}
	tw.Flush()
	for _, r := range recs {
		if r.Log != "" {
			fmt.Fprintf(w, "\n--- build log of %s %s (%s)\n%s", r.Image, shortID(r.BuildKey), r.Time.Local().Format(time.DateTime), r.Log)
		}
	}
}

func newWhyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "why COURSE [STUDENT]",
		Short: "Explain why a container or image is (or is not) about to be acted on",
		Long: `Why explains the decisions the next sync would take about COURSE: whether its
checkout would move, whether its image would be built (and why: where its
Dockerfile was found, which image it is built on), and, for each
of its containers (or STUDENT's only), the action and its reason — activity,
idle time, image staleness, lingering, freeze windows, guards.`,
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
			if len(w.Actions) == 0 && len(args) == 2 {
				return fmt.Errorf("no container %s", containers.Name(args[0], args[1]))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {course, student, pull, build, actions}")
	return cmd
}

// why is the part of a plan about one course (and student).
type why struct {
	Course  string             `json:"course"`
	Student string             `json:"student,omitempty"`
	Pull    *site.PlanPull     `json:"pull,omitempty"`
	Build   *site.PlanBuild    `json:"build,omitempty"`
	Actions []reconcile.Action `json:"actions"`
}

func whyOf(rep site.PlanReport, args []string) why {
	w := why{Course: args[0], Actions: []reconcile.Action{}}
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
	for i, b := range rep.Builds {
		if slices.Contains(b.Courses, w.Course) {
			w.Build = &rep.Builds[i]
		}
	}
	return w
}

func printWhy(w io.Writer, y why) {
	if y.Pull != nil {
		fmt.Fprintf(w, "pull: %s would move %s -> %s\n", y.Course, orDash(shortID(y.Pull.From)), shortID(y.Pull.To))
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
}
