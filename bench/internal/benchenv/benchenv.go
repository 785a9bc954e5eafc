// Package benchenv is the setup the benchmark programs share: a unique
// name prefix for what a run makes on the shared engine, a bounded worker
// pool for making and removing many containers, the clean-up of everything
// a run made, and the git command for fixtures (the baselines' yardstick,
// never the product's).
package benchenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// Prefix returns a name prefix unique to this run, "nbhtest-prv-" + kind +
// 8 hex digits: every container, image and temporary folder of the run
// starts with it, so that Cleanup removes those and nothing else.
func Prefix(kind string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "nbhtest-prv-" + kind + hex.EncodeToString(b)
}

// Parallel runs f(0..n-1) on workers goroutines and returns the first
// error; the others stop taking work once one failed or ctx ended.
func Parallel(ctx context.Context, n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil || failed.Load() {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Cleanup removes every container whose name starts with prefix, workers
// at a time, then every image with a tag that starts with prefix. It
// reports problems on stderr and returns how many containers it removed.
// It lists the containers again while the last round removed some: a
// create cancelled by Ctrl-C may still be completed by the engine after
// the first list.
func Cleanup(ctx context.Context, cli *client.Client, prefix string, workers int) int {
	total := 0
	for range 5 {
		n, ok := removeContainers(ctx, cli, prefix, workers)
		total += n
		if !ok || n == 0 {
			break
		}
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup: list images:", err)
		return total
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, prefix) {
				_, _ = cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
			}
		}
	}
	return total
}

// removeContainers removes the containers whose name starts with prefix
// and returns how many; ok is false when they could not be listed.
func removeContainers(ctx context.Context, cli *client.Client, prefix string, workers int) (removed int, ok bool) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup: list containers:", err)
		return 0, false
	}
	var ids []string
	for _, c := range cs {
		// The engine's name filter matches anywhere in the name.
		if len(c.Names) > 0 && strings.HasPrefix(strings.TrimPrefix(c.Names[0], "/"), prefix) {
			ids = append(ids, c.ID)
		}
	}
	var n atomic.Int64
	_ = Parallel(ctx, len(ids), workers, func(i int) error {
		if err := cli.ContainerRemove(ctx, ids[i], container.RemoveOptions{Force: true}); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
			return nil
		}
		n.Add(1)
		return nil
	})
	return int(n.Load()), true
}

// Git runs the git command in dir, isolated from the user's and the
// system's configuration (testenv.GitEnv), for fixtures and baselines.
func Git(dir string, args ...string) error {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testenv.GitEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Engine dials the Docker engine DOCKER_HOST names (the local socket by
// default) and reads its version, which every bench prints beside its
// figures; the caller closes the client.
func Engine(ctx context.Context) (*client.Client, types.Version, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, types.Version{}, err
	}
	ver, err := cli.ServerVersion(ctx)
	if err != nil {
		cli.Close()
		return nil, types.Version{}, fmt.Errorf("docker engine: %w", err)
	}
	return cli, ver, nil
}
