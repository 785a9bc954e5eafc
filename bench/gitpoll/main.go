// Command gitpoll measures the poll of many course repos through
// gitwatch.Mirrors.Update, side by side with a loop of `git fetch` (the
// CLI, as the baseline only) over the same repos in the same run: first
// when nothing changed, then when one repo of all changed. It prints CPU
// (user+sys) and wall time of each and their ratio. See README.md.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/gitwatch"
)

// serveEnv, when set to a directory, makes this program the git server:
// `git http-backend` behind net/http/cgi, serving the bare repos under it.
const serveEnv = "GITPOLL_SERVE"

func main() {
	if dir := os.Getenv(serveEnv); dir != "" {
		if err := serve(dir); err != nil {
			fmt.Fprintln(os.Stderr, "gitpoll server:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("repos", 100, "number of course repos")
	rounds := flag.Int("rounds", 3, "polls of all repos, per side, for each case (no change, one changed)")
	commits := flag.Int("commits", 20, "commits in each repo")
	transport := flag.String("transport", "http", "how the remotes are reached: http (smart HTTP, git http-backend behind a local server) or file")
	flag.Parse()
	if *transport != "http" && *transport != "file" {
		fmt.Fprintf(os.Stderr, "gitpoll: -transport %q: want http or file\n", *transport)
		os.Exit(2)
	}
	if err := run(context.Background(), *n, max(*rounds, 1), *commits, *transport); err != nil {
		fmt.Fprintln(os.Stderr, "gitpoll:", err)
		os.Exit(1)
	}
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

// serve answers smart HTTP for the bare repos under dir on a loopback
// port, which it prints first, until stdin closes.
func serve(dir string) error {
	h, err := benchenv.GitHTTP(dir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(ln, h)
}

// server is the git server process: a child that lives through the whole
// measurement, so that neither side's RUSAGE_CHILDREN holds its CPU; its
// own CPU (with its reaped http-backend children) is read from /proc.
type server struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string
}

func startServer(dir string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), serveEnv+"="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("git server did not start: %w", err)
	}
	return &server{cmd: cmd, stdin: in, addr: strings.TrimSpace(line)}, nil
}

// cpu is the server's CPU so far, its reaped http-backend children
// included (/proc/PID/stat: utime, stime, cutime, cstime).
func (s *server) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name in parentheses; utime is the 14th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks int64
	for _, s := range f[11:15] {
		v, _ := strconv.ParseInt(s, 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func (s *server) stop() {
	_ = s.stdin.Close()
	_ = s.cmd.Wait()
}

// side is one way of polling: its CPU, wall and server CPU, summed over
// rounds.
type side struct{ cpu, wall, server time.Duration }

func run(ctx context.Context, n, rounds, commits int, transport string) error {
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
	remoteDir := filepath.Join(dir, "remotes")
	srv := &server{}
	url := func(i int) string { return "file://" + filepath.Join(remoteDir, fmt.Sprintf("course%04d.git", i)) }
	if transport == "http" {
		if srv, err = startServer(remoteDir); err != nil {
			return err
		}
		defer srv.stop()
		url = func(i int) string { return fmt.Sprintf("http://%s/course%04d.git", srv.addr, i) }
	}
	// Setup, a few at a time: the remotes, the baseline's clones, the
	// mirrors' first fetch.
	t0 := time.Now()
	clones := make([]string, n)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := gitwatch.NewMirrors(filepath.Join(dir, "root"), log, gitwatch.Options{})
	err = benchenv.Parallel(ctx, n, 4, func(i int) error {
		if err := benchenv.Git(dir, "clone", "-q", "--bare", "--no-local", src, filepath.Join(remoteDir, fmt.Sprintf("course%04d.git", i))); err != nil {
			return err
		}
		clones[i] = filepath.Join(dir, "clones", fmt.Sprintf("course%04d", i))
		if err := benchenv.Git(dir, "clone", "-q", "--bare", url(i), clones[i]); err != nil {
			return err
		}
		_, err := m.Update(ctx, url(i), "main", nil)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("setup: %d remotes, git clones and mirrors in %s\n", n, time.Since(t0).Round(time.Millisecond))

	// poll runs one side over every repo and adds its cost to s; fetched
	// counts the repos whose mirror had to fetch.
	pollGo := func(s *side) (fetched int, err error) {
		cpu0, srv0, t0 := usage(syscall.RUSAGE_SELF), srv.cpu(), time.Now()
		for i := range n {
			h, err := m.Update(ctx, url(i), "main", nil)
			if err != nil {
				return 0, err
			}
			if h.Fetched {
				fetched++
			}
		}
		s.wall += time.Since(t0)
		s.cpu += usage(syscall.RUSAGE_SELF) - cpu0
		s.server += srv.cpu() - srv0
		return fetched, nil
	}
	pollGit := func(s *side) error {
		cpu0, srv0, t0 := usage(syscall.RUSAGE_CHILDREN), srv.cpu(), time.Now()
		for _, c := range clones {
			if err := benchenv.Git(c, "fetch", "-q", "origin", "+refs/heads/main:refs/heads/main"); err != nil {
				return err
			}
		}
		s.wall += time.Since(t0)
		s.cpu += usage(syscall.RUSAGE_CHILDREN) - cpu0
		s.server += srv.cpu() - srv0
		return nil
	}

	// Rounds interleaved, the order alternating, so that both sides see
	// the same machine load.
	var goSame, gitSame, goOne, gitOne side
	for r := range rounds {
		for k := range 2 {
			if (r+k)%2 == 0 {
				fetched, err := pollGo(&goSame)
				if err != nil {
					return err
				}
				if fetched != 0 {
					return fmt.Errorf("no-change poll fetched %d repos", fetched)
				}
			} else if err := pollGit(&gitSame); err != nil {
				return err
			}
		}
	}
	// One repo of n changed: a new commit pushed to one remote (another
	// each round), then both sides poll all n.
	work := filepath.Join(dir, "work")
	if err := benchenv.Git(dir, "clone", "-q", src, work); err != nil {
		return err
	}
	for r := range rounds {
		if err := os.WriteFile(filepath.Join(work, "changed.ipynb"), fmt.Appendf(nil, `{"round": %d}`, r), 0o644); err != nil {
			return err
		}
		if err := benchenv.Git(work, "commit", "-q", "-a", "--allow-empty", "-m", fmt.Sprint("change ", r)); err != nil {
			return err
		}
		if err := benchenv.Git(work, "add", "changed.ipynb"); err != nil {
			return err
		}
		if err := benchenv.Git(work, "commit", "-q", "--amend", "--no-edit"); err != nil {
			return err
		}
		target := filepath.Join(remoteDir, fmt.Sprintf("course%04d.git", (r*7919)%n))
		if err := benchenv.Git(work, "push", "-q", "-f", target, "HEAD:main"); err != nil {
			return err
		}
		for k := range 2 {
			if (r+k)%2 == 0 {
				fetched, err := pollGo(&goOne)
				if err != nil {
					return err
				}
				if fetched != 1 {
					return fmt.Errorf("poll after one change fetched %d repos, want 1", fetched)
				}
			} else if err := pollGit(&gitOne); err != nil {
				return err
			}
		}
	}

	polls := n * rounds
	fmt.Printf("poll of %d repos (%d commits each), %d rounds per case, %s remotes\n", n, commits, rounds, transport)
	fmt.Printf("%-34s %12s %12s %14s %14s %14s\n", "", "CPU total", "wall total", "CPU per poll", "wall per poll", "server CPU/poll")
	row := func(name string, s side) {
		fmt.Printf("%-34s %12s %12s %14s %14s %14s\n", name, s.cpu.Round(time.Millisecond), s.wall.Round(time.Millisecond),
			(s.cpu / time.Duration(polls)).Round(time.Microsecond), (s.wall / time.Duration(polls)).Round(time.Microsecond),
			(s.server / time.Duration(polls)).Round(time.Microsecond))
	}
	row("no change: gitwatch Mirrors.Update", goSame)
	row("no change: git fetch (CLI baseline)", gitSame)
	row("1 changed: gitwatch Mirrors.Update", goOne)
	row("1 changed: git fetch (CLI baseline)", gitOne)
	ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	fmt.Printf("ratio gitwatch/git, no change: CPU %.3f, wall %.3f (goal: CPU <= 0.1)\n", ratio(goSame.cpu, gitSame.cpu), ratio(goSame.wall, gitSame.wall))
	fmt.Printf("ratio gitwatch/git, 1 of %d changed: CPU %.3f, wall %.3f\n", n, ratio(goOne.cpu, gitOne.cpu), ratio(goOne.wall, gitOne.wall))
	per := func(d time.Duration) time.Duration { return (d / time.Duration(rounds)).Round(time.Millisecond) }
	fmt.Printf("RESULT gitpoll transport=%s repos=%d cpu=%s wall=%s base_cpu=%s base_wall=%s cpu_ratio=%.3f wall_ratio=%.3f one_cpu=%s one_wall=%s one_base_cpu=%s one_base_wall=%s one_cpu_ratio=%.3f one_wall_ratio=%.3f\n",
		transport, n, per(goSame.cpu), per(goSame.wall), per(gitSame.cpu), per(gitSame.wall), ratio(goSame.cpu, gitSame.cpu), ratio(goSame.wall, gitSame.wall),
		per(goOne.cpu), per(goOne.wall), per(gitOne.cpu), per(gitOne.wall), ratio(goOne.cpu, gitOne.cpu), ratio(goOne.wall, gitOne.wall))
	return nil
}
