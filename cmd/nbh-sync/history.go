package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/rootdir"
)

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
				var out api.History
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
				st, err := history.Open(rootdir.History(root), history.Options{ReadOnly: true})
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
			subject = naming.Container(r.Course, r.Student)
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
			fmt.Fprintf(w, "\n--- build log of %s %s (%s)\n%s", r.Image, shortid.Of(r.BuildKey), r.Time.Local().Format(time.DateTime), r.Log)
		}
	}
}
