package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/gitwatch"
	"github.com/nbhosting/nbh-sync/manifest"
)

func newValidateCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [PATH]",
		Short: "Check courses.yaml and the Dockerfiles it uses, with line-numbered errors",
		Long: `Validate checks a config repo the way the daemon will before applying it:
courses.yaml strictly (unknown fields, duplicate keys, bad durations, memory sizes
and cron expressions, invalid names), that every image can be built from somewhere,
and the lint of every Dockerfile of the config repo.

PATH is a config directory (the one holding courses.yaml), a courses.yaml file,
or a git URL / bare repo (its committed state on the default branch). A directory
is checked as it is on disk, so you can validate before committing. Without PATH,
--config is used.

Every problem is printed as FILE:LINE:COL: field.path: message. The exit status
is 0 when the config is valid (warnings are printed but do not fail it), 1 when
it is not.`,
		Example: `  nbh-sync validate examples/
  nbh-sync validate ./courses.yaml --json | jq .errors
  nbh-sync validate https://git.example.org/site/config.git`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := g.config
			if len(args) == 1 {
				path = args[0]
			}
			rep, err := validatePath(cmd, g, path)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, p := range append(rep.Errors, rep.Warnings...) {
					fmt.Fprintln(g.stdout, p)
				}
				if rep.Valid {
					fmt.Fprintf(g.stdout, "%s: valid: %d courses, %d images, %d warnings\n", rep.File, rep.Courses, len(rep.Images), len(rep.Warnings))
				} else {
					fmt.Fprintf(g.stdout, "%s: invalid: %d errors, %d warnings\n", rep.File, len(rep.Errors), len(rep.Warnings))
				}
			}
			if !rep.Valid {
				return exitCode(exitError)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document: {valid, file, courses, images, errors, warnings}")
	return cmd
}

// validatePath validates the config found at path: the files on disk when
// path is courses.yaml or a folder holding it, else the committed state of
// the git repo (URL, bare repo, or work tree) path names.
func validatePath(cmd *cobra.Command, g *globals, path string) (*manifest.Report, error) {
	if dir, file, ok := onDisk(path); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		return manifest.Check(file, data, func(c *manifest.Config) manifest.Sources { return manifest.DirSources{Dir: dir, Config: c} }), nil
	}
	return validateRepo(cmd.Context(), g, path)
}

// onDisk finds courses.yaml at a local path: the file itself or the folder
// holding it.
func onDisk(path string) (dir, file string, ok bool) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "", "", false
	case !fi.IsDir():
		return filepath.Dir(path), path, true
	}
	file = filepath.Join(path, manifest.FileName)
	if _, err := os.Stat(file); err != nil {
		return "", "", false
	}
	return path, file, true
}

// validateRepo fetches the config repo at location into a scratch
// directory and validates its head commit, as the daemon would.
func validateRepo(ctx context.Context, g *globals, location string) (*manifest.Report, error) {
	loc, err := gitwatch.LocateConfig(location, "")
	if err != nil {
		return nil, fmt.Errorf("config %s: not courses.yaml, nor a folder holding one, nor a git repo: %w", location, err)
	}
	tmp, err := os.MkdirTemp("", "nbh-sync-validate-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	m := gitwatch.NewMirrors(tmp, g.log, gitwatch.Options{SafeDirectories: g.safeDirs})
	creds, err := g.configCredentials()
	if err != nil {
		return nil, err
	}
	l := configrepo.NewLoader(m, tmp, loc, creds, g.log)
	if err := l.Fetch(ctx); err != nil {
		return nil, err
	}
	res, err := l.Peek(ctx)
	if err != nil {
		return nil, err
	}
	file := path.Join(loc.Dir, manifest.FileName)
	rep := manifest.NewReport(file)
	if res.Rejected != nil {
		rep.Add(res.Rejected.Problems...)
		return rep, nil
	}
	rev := res.Current
	rep.Valid, rep.Courses, rep.Images = true, len(rev.Config.Courses), rev.Config.ImageNames()
	rep.Warnings = append(rep.Warnings, rev.Warnings...)
	return rep, nil
}
