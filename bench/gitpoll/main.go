// Command gitpoll measures a no-change poll of many course repos through
// gitwatch.Mirrors.Update, side by side with a loop of `git fetch` (the
// CLI, as the baseline only) over the same repos in the same run, and
// prints CPU (user+sys) and wall time of each and their ratio.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/gitwatch"
)

func main() {
	n := flag.Int("repos", 100, "number of course repos")
	rounds := flag.Int("rounds", 3, "no-change polls of all repos, per side")
	commits := flag.Int("commits", 20, "commits in each repo")
	benchenv.Main("bench/gitpoll", func(ctx context.Context) error { return run(ctx, *n, *rounds, *commits) })
}

// usage is the CPU time (user+sys) of who: this process or its waited-for
// children.
func usage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func run(ctx context.Context, n, rounds, commits int) error {
	dir, err := os.MkdirTemp("", "gitpoll-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// One source repo with some history, cloned into n bare remotes, each
	// with one commit of its own so that they differ.
	src := filepath.Join(dir, "src")
	if err := benchenv.Git(dir, "init", "-q", "-b", "main", src); err != nil {
		return err
	}
	for i := range commits {
		p := filepath.Join(src, fmt.Sprintf("nb%02d.ipynb", i%7))
		if err := os.WriteFile(p, fmt.Appendf(nil, `{"cells": %d}`, i), 0o644); err != nil {
			return err
		}
		if err := benchenv.Git(src, "add", "-A"); err != nil {
			return err
		}
		if err := benchenv.Git(src, "commit", "-q", "-m", fmt.Sprint(i)); err != nil {
			return err
		}
	}
	remotes := make([]string, n)
	clones := make([]string, n)
	for i := range n {
		remotes[i] = filepath.Join(dir, "remotes", fmt.Sprintf("course%03d.git", i))
		if err := benchenv.Git(dir, "clone", "-q", "--bare", "--no-local", src, remotes[i]); err != nil {
			return err
		}
		clones[i] = filepath.Join(dir, "clones", fmt.Sprintf("course%03d", i))
		if err := benchenv.Git(dir, "clone", "-q", "--bare", "file://"+remotes[i], clones[i]); err != nil {
			return err
		}
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := gitwatch.NewMirrors(filepath.Join(dir, "root"), log, gitwatch.Options{})
	for _, r := range remotes {
		if _, err := m.Update(ctx, "file://"+r, "main", nil); err != nil {
			return err
		}
	}

	var goCPU, goWall, gitCPU, gitWall time.Duration
	for range rounds {
		// Interleave the sides so that both see the same machine load.
		cpu0, t0 := usage(syscall.RUSAGE_SELF), time.Now()
		for _, r := range remotes {
			h, err := m.Update(ctx, "file://"+r, "main", nil)
			if err != nil {
				return err
			}
			if h.Fetched {
				return fmt.Errorf("%s: no-change poll fetched", r)
			}
		}
		goCPU += usage(syscall.RUSAGE_SELF) - cpu0
		goWall += time.Since(t0)

		cpu0, t0 = usage(syscall.RUSAGE_CHILDREN), time.Now()
		for _, c := range clones {
			if err := benchenv.Git(c, "fetch", "-q", "origin", "+refs/heads/main:refs/heads/main"); err != nil {
				return err
			}
		}
		gitCPU += usage(syscall.RUSAGE_CHILDREN) - cpu0
		gitWall += time.Since(t0)
	}

	polls := n * rounds
	fmt.Printf("no-change poll of %d repos (%d commits each), %d rounds, file:// remotes\n", n, commits, rounds)
	fmt.Printf("%-26s %12s %12s %14s %14s\n", "", "CPU total", "wall total", "CPU per poll", "wall per poll")
	row := func(name string, cpu, wall time.Duration) {
		fmt.Printf("%-26s %12s %12s %14s %14s\n", name, cpu.Round(time.Millisecond), wall.Round(time.Millisecond),
			(cpu / time.Duration(polls)).Round(time.Microsecond), (wall / time.Duration(polls)).Round(time.Microsecond))
	}
	row("gitwatch Mirrors.Update", goCPU, goWall)
	row("git fetch (CLI baseline)", gitCPU, gitWall)
	fmt.Printf("ratio gitwatch/git: CPU %.3f, wall %.3f (goal: CPU <= 0.5)\n",
		float64(goCPU)/float64(gitCPU), float64(goWall)/float64(gitWall))
	return nil
}
