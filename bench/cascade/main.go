// Command cascade measures a core image change on a site whose course
// images are built FROM it: the daemon's path (site.Site.Sync: pull, the
// core image built and smoke-tested once, then every course image on it,
// at the builder's concurrency, then the container pass) side by side with
// the same builds run by hand through the engine's API at the same
// concurrency. Then it commits a notebook change to every course repo and
// checks that the next sync builds nothing. See bench/README.md.
//
//	go run ./bench/cascade -courses 20 -rounds 2
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/site"
)

func main() {
	n := flag.Int("courses", 20, "course images built FROM the core image")
	rounds := flag.Int("rounds", 2, "core image changes, each timed on both sides")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, max(*n, 1), max(*rounds, 1)); err != nil {
		fmt.Fprintln(os.Stderr, "bench/cascade:", err)
		os.Exit(1)
	}
}

// The site's files. The core image holds the start script and a version
// file (changed each round); each course image adds a file of its own.
const (
	coreDockerfile   = "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY version /etc/core-version\n"
	courseDockerfile = "FROM %s\nCOPY requirements.txt /opt/%s/\n"
)

func write(p, content string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

func commit(dir, msg string) error {
	if err := benchenv.Git(dir, "add", "-A"); err != nil {
		return err
	}
	return benchenv.Git(dir, "commit", "-q", "-m", msg)
}

func run(ctx context.Context, n, rounds int) error {
	cli, ver, err := benchenv.Engine(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	prefix := benchenv.Prefix("cas")
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	core := prefix + "/core"
	course := func(i int) string { return fmt.Sprintf("%s-c%02d", prefix, i) }
	defer func() {
		// Everything this run made carries the prefix, the baseline's
		// images too. In rounds: a core image whose course images still
		// stand is only untagged by the first.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		for range 3 {
			benchenv.Cleanup(cctx, cli, prefix, 4)
		}
	}()

	// The site: a config repo naming the core image and n courses, each
	// course repo with nbhosting/Dockerfile FROM the core image.
	config := filepath.Join(tmp, "config")
	var yaml bytes.Buffer
	fmt.Fprintf(&yaml, "version: 1\nimages:\n  %s:\n    dockerfile: images/core.Dockerfile\ncourses:\n", core)
	for i := range n {
		dir := filepath.Join(tmp, "courses", course(i))
		for p, content := range map[string]string{
			"nbhosting/Dockerfile":       fmt.Sprintf(courseDockerfile, core, course(i)),
			"nbhosting/requirements.txt": course(i) + "\n",
			"lesson.ipynb":               `{"cells": []}` + "\n",
		} {
			if err := write(filepath.Join(dir, p), content); err != nil {
				return err
			}
		}
		if err := benchenv.Git(dir, "init", "-q", "-b", "main"); err != nil {
			return err
		}
		if err := commit(dir, "course"); err != nil {
			return err
		}
		fmt.Fprintf(&yaml, "  %s:\n    repo: %s\n", course(i), dir)
	}
	for p, content := range map[string]string{
		"courses.yaml":                   yaml.String(),
		"images/core.Dockerfile":         coreDockerfile,
		"images/" + manifest.StartScript: string(images.StartScript),
		"images/version":                 "0\n",
	} {
		if err := write(filepath.Join(config, p), content); err != nil {
			return err
		}
	}
	if err := benchenv.Git(config, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	if err := commit(config, "site"); err != nil {
		return err
	}

	s, err := site.New(site.Options{Config: config, Root: filepath.Join(tmp, "root")})
	if err != nil {
		return err
	}
	defer s.Close()
	// syncSite syncs and returns how many images the sync built.
	syncSite := func() (int, time.Duration, error) {
		t0 := time.Now()
		rep, err := s.Sync(ctx, site.SyncOptions{})
		d := time.Since(t0)
		if err != nil {
			return 0, d, err
		}
		built := 0
		for _, r := range rep.Builds {
			if r.Built {
				built++
			}
		}
		return built, d, nil
	}
	t0 := time.Now()
	if got, _, err := syncSite(); err != nil || got != n+1 {
		return fmt.Errorf("first sync built %d images, want %d: %v", got, n+1, err)
	}
	fmt.Printf("setup: %d course repos and the first sync (%d builds) in %s\n", n, n+1, time.Since(t0).Round(time.Millisecond))

	// The baseline: the same contexts, built by hand through the API,
	// the core image first, then the courses at the builder's
	// concurrency, with the same three labels.
	eng, err := images.NewDockerEngine()
	if err != nil {
		return err
	}
	defer eng.Close()
	conc := manifest.DefaultConcurrency
	byHand := func(round int) (time.Duration, error) {
		t0 := time.Now()
		baseCore := fmt.Sprintf("%s-base/core:r%d", prefix, round)
		err := engineBuild(ctx, eng, baseCore, map[string][]byte{
			"Dockerfile":         []byte(coreDockerfile),
			manifest.StartScript: images.StartScript,
			"version":            fmt.Appendf(nil, "base %d\n", round),
		})
		if err != nil {
			return 0, err
		}
		sem := make(chan struct{}, conc)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				errs[i] = engineBuild(ctx, eng, fmt.Sprintf("%s-base-c%02d:r%d", prefix, i, round), map[string][]byte{
					"Dockerfile":       fmt.Appendf(nil, courseDockerfile, baseCore, course(i)),
					"requirements.txt": []byte(course(i) + "\n"),
				})
			})
		}
		wg.Wait()
		return time.Since(t0), errors.Join(errs...)
	}

	var ours, theirs []time.Duration
	for r := range rounds {
		change := func() (time.Duration, error) {
			if err := write(filepath.Join(config, "images/version"), fmt.Sprintf("%d\n", r+1)); err != nil {
				return 0, err
			}
			if err := commit(config, fmt.Sprint("core image v", r+1)); err != nil {
				return 0, err
			}
			got, d, err := syncSite()
			if err == nil && got != n+1 {
				err = fmt.Errorf("the core image change built %d images, want %d", got, n+1)
			}
			return d, err
		}
		sides := []func() (time.Duration, error){change, func() (time.Duration, error) { return byHand(r) }}
		if r%2 == 1 {
			slices.Reverse(sides)
		}
		var d [2]time.Duration
		for k, f := range sides {
			if d[k], err = f(); err != nil {
				return err
			}
		}
		if r%2 == 1 {
			d[0], d[1] = d[1], d[0]
		}
		fmt.Printf("round %d/%d: sync %s, by hand %s\n", r+1, rounds, d[0].Round(time.Millisecond), d[1].Round(time.Millisecond))
		ours, theirs = append(ours, d[0]), append(theirs, d[1])
	}

	// A commit touching only notebooks in every course repo: no build.
	for i := range n {
		dir := filepath.Join(tmp, "courses", course(i))
		if err := write(filepath.Join(dir, "lesson.ipynb"), `{"cells": [1]}`+"\n"); err != nil {
			return err
		}
		if err := commit(dir, "notebook only"); err != nil {
			return err
		}
	}
	nbBuilds, nbT, err := syncSite()
	if err != nil {
		return err
	}

	sum := func(ds []time.Duration) (t time.Duration) {
		for _, d := range ds {
			t += d
		}
		return t
	}
	fmt.Printf("\ncore image change, %d course images FROM it (%d builds, concurrency %d); Docker %s; %d rounds\n", n, n+1, conc, ver.Version, rounds)
	fmt.Printf("%-44s %10s\n", "", "wall/round")
	fmt.Printf("%-44s %10s\n", "nbh-sync Site.Sync (pull, builds, pass)", (sum(ours) / time.Duration(rounds)).Round(time.Millisecond))
	fmt.Printf("%-44s %10s\n", "the same builds by hand (engine API)", (sum(theirs) / time.Duration(rounds)).Round(time.Millisecond))
	fmt.Printf("ratio sync/by hand: wall %.3f (goal <= 1.05)\n", float64(sum(ours))/float64(sum(theirs)))
	fmt.Printf("notebook-only commit in all %d course repos: %d builds, sync in %s\n", n, nbBuilds, nbT.Round(time.Millisecond))
	fmt.Printf("RESULT cascade courses=%d nbh=%s base=%s ratio=%.3f notebook_builds=%d\n", n, (sum(ours) / time.Duration(rounds)).Round(time.Millisecond),
		(sum(theirs) / time.Duration(rounds)).Round(time.Millisecond), float64(sum(ours))/float64(sum(theirs)), nbBuilds)
	if nbBuilds != 0 {
		return fmt.Errorf("a notebook-only commit built %d images, want 0", nbBuilds)
	}
	return nil
}

// engineBuild builds files as a context through the engine's API, tagged
// tag, with three labels as nbh-sync's builds carry, and waits for the end.
func engineBuild(ctx context.Context, eng *images.DockerEngine, tag string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(files[name]))}); err != nil {
			return err
		}
		if _, err := tw.Write(files[name]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	labels := map[string]string{"nbhtest.image": tag, "nbhtest.key": tag, "nbhtest.source": tag}
	rc, err := eng.ImageBuild(ctx, &buf, images.BuildOptions{Tags: []string{tag}, Dockerfile: "Dockerfile", Labels: labels})
	if err != nil {
		return err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err == nil && bytes.Contains(body, []byte(`"error"`)) {
		err = fmt.Errorf("build %s failed: %s", tag, body)
	}
	return err
}
