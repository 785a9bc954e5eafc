package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// pending makes a command whose capability has not landed yet: it says so
// and exits 1, rather than pretending.
func pending(use, short, long, issue string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%s: not available in this build yet (tracked in issue %s)", cmd.Name(), issue)
		},
	}
}

func newRunCmd(*globals) *cobra.Command {
	return pending("run", "Run the daemon: watch git, build images, reconcile containers",
		`Run starts the daemon: it polls and watches the config and course repos, takes
webhooks, runs the cron schedules of courses.yaml, builds images and runs container
passes, and serves the dashboard, the JSON API and /metrics.`, "#6")
}
