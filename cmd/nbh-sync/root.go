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

	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/internal/logctx"
	"github.com/nbhosting/nbh-sync/manifest"
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
	// configSet is true when --config was given on the command line.
	configSet bool
	// configCreds are the config repo's credentials, as a course's.
	configCreds manifest.Credentials
	// safeDirs are local repositories trusted whatever their owner.
	safeDirs []string
	// api names the daemon to talk to ("" its socket under root, "none"
	// none); apiTokenFile holds its bearer token.
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

// envList is the comma-separated list in the environment variable key.
func envList(key string) []string {
	if v := os.Getenv(key); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run is the whole program but for the process: it parses args, runs the
// command and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	stopProfiles := startProfiles(stderr)
	defer stopProfiles()
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
			g.configSet = cmd.Flags().Changed("config")
			return nil
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.config, "config", envOr("NBH_CONFIG", "."), "config repo: git URL, bare repo, or a directory inside a git work tree (env NBH_CONFIG)")
	f.StringVar(&g.root, "root", envOr("NBH_ROOT", defaultRoot), "data directory: clones, course work trees, history (env NBH_ROOT)")
	f.StringVar(&g.configCreds.Username, "config-username", os.Getenv("NBH_CONFIG_USERNAME"), "user name for an https config repo (default "+gitwatch.DefaultTokenUser+" with a password) (env NBH_CONFIG_USERNAME)")
	f.StringVar(&g.configCreds.PasswordFile, "config-password-file", os.Getenv("NBH_CONFIG_PASSWORD_FILE"), "file holding the password or token of an https config repo (env NBH_CONFIG_PASSWORD_FILE)")
	f.StringVar(&g.configCreds.PasswordEnv, "config-password-env", os.Getenv("NBH_CONFIG_PASSWORD_ENV"), "name of the environment variable holding the password or token of an https config repo")
	f.StringVar(&g.configCreds.SSHKeyFile, "config-ssh-key-file", os.Getenv("NBH_CONFIG_SSH_KEY_FILE"), "private key for an ssh config repo (env NBH_CONFIG_SSH_KEY_FILE)")
	f.StringVar(&g.configCreds.KnownHostsFile, "config-known-hosts-file", os.Getenv("NBH_CONFIG_KNOWN_HOSTS_FILE"), "known_hosts file for an ssh config repo, required with --config-ssh-key-file (env NBH_CONFIG_KNOWN_HOSTS_FILE)")
	f.StringSliceVar(&g.safeDirs, "safe-directory", envList("NBH_SAFE_DIRECTORIES"), `a local repository trusted although another user owns it, as git's safe.directory ("*": all; repeatable) (env NBH_SAFE_DIRECTORIES, comma-separated)`)
	f.StringVar(&g.api, "api", os.Getenv("NBH_API"), `the daemon to talk to: http://HOST:PORT or unix:PATH; by default the daemon whose socket is under --root, if one runs; "none": work directly (env NBH_API)`)
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
		newResetCmd(g),
		newShareCmd(g),
	)
	root.AddCommand(opsCommands(g)...)
	return root
}

// configCredentials returns the config repo's credentials of the flags,
// nil when none is given. Both password flags at once is an error.
func (g *globals) configCredentials() (*manifest.Credentials, error) {
	c := g.configCreds
	if c.PasswordFile != "" && c.PasswordEnv != "" {
		return nil, errors.New("--config-password-file and --config-password-env: give one, not both")
	}
	if c == (manifest.Credentials{}) {
		return nil, nil
	}
	return &c, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	// logctx: the lines of a pass carry its ID, whichever package logs them.
	switch strings.ToLower(format) {
	case "text":
		return slog.New(logctx.Handler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(logctx.Handler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
