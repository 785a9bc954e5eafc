// Command swarmpass measures the observe-and-plan half of a container pass
// over many student services on a real Docker Swarm manager, with the
// engine API calls counted: the Swarm engine's figure to read beside
// bench/pass (the local engine). See ../README.md.
//
//	bash .ci/swarm.sh up && go run ./bench/swarmpass -n 1000 -rounds 3; bash .ci/swarm.sh down
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/bench/internal/benchenv"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/reconcile"
)

func main() {
	sc := benchenv.ScaleFlags("student services")
	registry := flag.String("registry", "127.0.0.1:5000", "the site's registry")
	benchenv.Main("bench/swarmpass", func(ctx context.Context) error {
		return run(ctx, sc.N, min(sc.Running, sc.N), max(sc.Courses, 1), max(sc.Rounds, 1), max(sc.Workers, 1), *registry)
	})
}

func run(ctx context.Context, n, running, courses, rounds, workers int, registry string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	info, err := cli.Info(ctx)
	if err != nil {
		return err
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return errors.New("the engine is not a swarm manager (bash .ci/swarm.sh up)")
	}
	prefix := fmt.Sprintf("nbhtest-swb%d", time.Now().UnixNano()%1e6)
	site := prefix
	img := prefix + "-img"
	defer removeImages(cli, img, registry) // after the services are gone
	defer cleanup(cli, prefix, workers)

	// The image: FROM scratch, the fake Jupyter server, pushed to the
	// registry; services run it by digest.
	ref, err := fakeImage(ctx, cli, img, registry)
	if err != nil {
		return err
	}

	// The services: managed, labelled, spread over courses; the first
	// `running` ones scaled to 1 (a fake server under its stable prefix),
	// the others left at 0.
	eng := containers.NewSwarm(cli, registry, "")
	t0 := time.Now()
	jobs := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				course := fmt.Sprintf("%s-c%d", prefix, i%courses)
				student := "s" + strconv.Itoa(i)
				pfx := naming.Prefix(course, student)
				id, err := eng.Create(ctx, containers.Spec{
					Name: naming.Container(course, student), Image: ref,
					Cmd: []string{"/fakejupyter", "--port=8888", "--base-url=" + pfx},
					Labels: map[string]string{containers.LabelCourse: course, containers.LabelStudent: student,
						containers.LabelManagedBy: containers.ManagedBy, containers.LabelSite: site, containers.LabelBasePath: pfx},
					Port: 8888,
				})
				if err == nil && i < running {
					err = eng.Start(ctx, id)
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Printf("created %d services (%d running) in %s\n", n, running, time.Since(t0).Round(time.Millisecond))

	// The measured path: reconcile.Pass.Observe and reconcile.Plan, as the
	// daemon runs them, through a client whose transport counts calls.
	ct := &benchenv.Counter{Base: benchenv.UnixTransport(engineSocket())}
	ccli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation(), client.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		return err
	}
	defer ccli.Close()
	if _, err := ccli.Ping(ctx); err != nil { // version negotiation, not counted
		return err
	}
	ct.Take()
	m := containers.New(containers.NewSwarm(ccli, registry, ""), nil, nil)
	m.Site = site
	yaml := fmt.Sprintf("version: 1\nengine: {kind: swarm, registry: %q}\ncourses:\n", registry)
	for c := range courses {
		yaml += fmt.Sprintf("  %s-c%d: {repo: /srv/none, image: %s}\n", prefix, c, img)
	}
	cfg, _, err := manifest.Parse("courses.yaml", []byte(yaml))
	if err != nil {
		return err
	}
	pass := &reconcile.Pass{Containers: m, Prober: activity.New(), Root: "/nonexistent"}
	for r := range rounds {
		t := time.Now()
		obs, err := pass.Observe(ctx, cfg, false)
		if err != nil {
			return err
		}
		plan := reconcile.Plan(obs.Desired, obs.Containers, obs.Activity, time.Now())
		d := time.Since(t)
		counts := ct.Take()
		calls, by := benchenv.Total(counts), benchenv.Describe(counts)
		answered := 0
		for _, a := range obs.Activity {
			if a.State == activity.Answered {
				answered++
			}
		}
		fmt.Printf("round %d: observe+plan of %d services: %s, %d engine calls (%s), %d servers answered the probe, %d actions\n",
			r+1, len(obs.Containers), d.Round(time.Millisecond), calls, by, answered, len(plan))
		if len(obs.Containers) != n || answered != running {
			return fmt.Errorf("observed %d services, %d answering; want %d, %d", len(obs.Containers), answered, n, running)
		}
	}
	return nil
}

// engineSocket is the engine's unix socket, from DOCKER_HOST if it names one.
func engineSocket() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return strings.TrimPrefix(h, "unix://")
	}
	return "/var/run/docker.sock"
}

// cleanup removes every service of the run, also after an error or Ctrl-C.
func cleanup(cli *client.Client, prefix string, workers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", prefix))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return
	}
	t0 := time.Now()
	ids := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				if err := cli.ServiceRemove(ctx, id); err != nil {
					fmt.Fprintln(os.Stderr, "cleanup:", err)
				}
			}
		}()
	}
	for _, s := range svcs {
		if strings.HasPrefix(s.Spec.Name, prefix) {
			ids <- s.ID
		}
	}
	close(ids)
	wg.Wait()
	// Their containers go asynchronously; the image can go after them.
	for ctx.Err() == nil {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
		if err != nil || len(cs) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("removed %d services in %s\n", len(svcs), time.Since(t0).Round(time.Millisecond))
}

// fakeImage builds the fake Jupyter server into an image FROM scratch,
// tagged img:latest, pushes it to registry and returns its digest reference.
func fakeImage(ctx context.Context, cli *client.Client, img, registry string) (string, error) {
	tmp, err := os.MkdirTemp("", "nbhtest-swarmpass-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "fakejupyter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./internal/fakejupyter/cmd/fakejupyter")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build fakejupyter (run from the module root): %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	tag := registry + "/" + img + ":bench"
	// The build labels make it an image this site built (the pass serves
	// no other).
	df := fmt.Sprintf("FROM scratch\nCOPY fakejupyter /fakejupyter\nLABEL %s=%s %s=%s\nCMD [\"/fakejupyter\"]\n",
		images.LabelImage, img, images.LabelBuildKey, strings.Repeat("b", 64))
	if _, err := testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte(df)}, {Name: "fakejupyter", Mode: 0o755, Data: data}}, img+":latest", tag); err != nil {
		return "", err
	}
	rc, err := cli.ImagePush(ctx, tag, image.PushOptions{RegistryAuth: images.RegistryAuth("", "")})
	if err != nil {
		return "", err
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if strings.Contains(string(out), `"error"`) {
		return "", fmt.Errorf("push %s: %s", tag, out)
	}
	refs, err := containers.NewSwarm(cli, registry, "").Images(ctx, []string{img + ":latest"})
	if err != nil {
		return "", err
	}
	if refs[img+":latest"].ID == "" {
		return "", fmt.Errorf("no digest for %s after the push", tag)
	}
	return refs[img+":latest"].ID, nil
}

func removeImages(cli *client.Client, img, registry string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, ref := range []string{img + ":latest", registry + "/" + img + ":bench"} {
		_, _ = cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}
