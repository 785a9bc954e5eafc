package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is stamped by make build (-ldflags -X main.version=...).
var version = "dev"

// Exit statuses: 2 tells a script that a plan has changes.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan --detailed-exitcode: the plan has changes
)

// exitError carries an exit status other than 1 out of a command.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// globals are the flags every command shares.
type globals struct {
	config    string
	root      string
	logLevel  string
	logFormat string
	// api is the daemon's base URL; apiTokenFile holds its bearer token.
	api          string
	apiTokenFile string
	stdin        io.Reader
	stdout       io.Writer
	stderr       io.Writer
	log          *slog.Logger
}

// defaultRoot is where nbh-sync keeps clones, work trees and its history
// when --root and NBH_ROOT say nothing.
const defaultRoot = "/var/lib/nbh-sync"

// defaultListen is where the daemon's HTTP server listens by default.
const defaultListen = "127.0.0.1:8787"

// defaultTokenFile holds the API's bearer token by default.
const defaultTokenFile = "/etc/nbh-sync/api-token"

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run is the whole program but for the process: it parses args, runs the
// command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(stderr, "nbh-sync: %v\n", err)
		return exitError
	}
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "nbh-sync",
		Short: "GitOps reconciler for Jupyter course hosting",
		Long: `nbh-sync keeps a Docker host running a Jupyter course site (nbhosting-style)
in line with git.

Admins commit courses.yaml (and optional Dockerfiles under images/) to a config
repo; instructors push their course repos. nbh-sync pulls them, keeps a checked-out
copy of every course under ROOT/courses/COURSE, rebuilds a course image exactly
when its inputs change, creates one container per student on demand, and retires
containers running a stale image only once they are idle: a working student is
never interrupted.

Start here:
  nbh-sync validate ./config-repo          check courses.yaml before you push it
  nbh-sync plan --config ./config-repo     what a sync would do now, doing nothing
  nbh-sync run --config URL                the daemon (dashboard on 127.0.0.1:8787)

Every command that reads the site takes --config (a git URL, a bare repo, or a
directory inside a git work tree whose committed HEAD is used) and --root (the
data directory). Both may also come from NBH_CONFIG and NBH_ROOT.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(g.stderr, g.logLevel, g.logFormat)
			if err != nil {
				return err
			}
			g.log = log
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.config, "config", envOr("NBH_CONFIG", "."), "config repo: git URL, bare repo, or a directory inside a git work tree (env NBH_CONFIG)")
	f.StringVar(&g.root, "root", envOr("NBH_ROOT", defaultRoot), "data directory: clones, course work trees, history (env NBH_ROOT)")
	f.StringVar(&g.api, "api", envOr("NBH_API", "http://"+defaultListen), `a running daemon's API, used when it answers ("none": always work directly) (env NBH_API)`)
	f.StringVar(&g.apiTokenFile, "api-token-file", envOr("NBH_API_TOKEN_FILE", defaultTokenFile), "file holding the bearer token of the daemon's mutating API calls (env NBH_API_TOKEN_FILE)")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.MarkPersistentFlagDirname("root")

	root.AddCommand(
		newValidateCmd(g),
		newRunCmd(g),
		newPlanCmd(g),
		newSyncCmd(g),
		newBuildCmd(g),
		newSpawnCmd(g),
		newStatusCmd(g),
		newHistoryCmd(g),
		newWhyCmd(g),
	)
	return root
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
