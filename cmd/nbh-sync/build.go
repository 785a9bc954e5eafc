package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/internal/shortid"
	"github.com/nbhosting/nbh-sync/site"
)

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
				fmt.Fprintf(g.stdout, "built %s:%s (%s) in %s; %s:latest serves it\n", res.Image, shortid.Of(res.Key), shortid.Of(res.ImageID), res.Duration.Round(time.Second), res.Image)
			case res.Pinned:
				fmt.Fprintf(g.stdout, "%s is pinned; %s:latest serves the pinned build\n", res.Image, res.Image)
			default:
				fmt.Fprintf(g.stdout, "%s is up to date: build %s exists (use --force to rebuild)\n", res.Image, shortid.Of(res.Key))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild without the engine's cache even if the build key has a build")
	return cmd
}
