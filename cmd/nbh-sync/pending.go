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

func newPlanCmd(*globals) *cobra.Command {
	return pending("plan", "Show what a sync would do now — pulls, builds, container actions — doing nothing",
		`Plan computes the pulls, builds and container actions a sync would make now,
each with its reason, and changes nothing.`, "#5")
}

func newSyncCmd(*globals) *cobra.Command {
	return pending("sync", "Run one full pass (pull, build, container pass) and exit",
		`Sync pulls the config and course repos, builds the images whose inputs changed
and runs one container pass, then exits.`, "#3")
}

func newBuildCmd(*globals) *cobra.Command {
	return pending("build IMAGE", "Build or rebuild one image now, streaming its log",
		`Build builds IMAGE if its build key has no image yet (or always, with --force),
smoke-tests it and moves IMAGE:latest to it.`, "#4")
}

func newSpawnCmd(*globals) *cobra.Command {
	return pending("spawn COURSE STUDENT", "Ensure a student's container runs and print where it answers",
		`Spawn makes sure STUDENT has a running container for COURSE, created from the
course's current image if needed, and prints its name, state, port and URL.`, "#5")
}

func newStatusCmd(*globals) *cobra.Command {
	return pending("status", "Show courses, commits, images, build keys, containers and errors",
		`Status shows each course's branch and commit, each image's build key, the
containers (running, stopped, stale), the last pass and the errors.`, "#3")
}

func newHistoryCmd(*globals) *cobra.Command {
	return pending("history", "Show past pulls, builds and actions, newest first",
		`History lists past pulls, builds and container actions, newest first.`, "#6")
}

func newWhyCmd(*globals) *cobra.Command {
	return pending("why COURSE [STUDENT]", "Explain why a container or image is (or is not) about to be acted on",
		`Why explains the decision the next pass would take about COURSE's image, or
about STUDENT's container, and the facts it rests on.`, "#5")
}
