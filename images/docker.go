package images

// This file is the only one of package images that imports the Docker SDK;
// no SDK type leaves it.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/nbhosting/nbh-sync/imageref"
)

// DockerEngine is the Engine of a Docker daemon, reached through the SDK.
type DockerEngine struct {
	cli *client.Client
}

var _ Engine = (*DockerEngine)(nil)

// NewDockerEngine connects to the engine named by the environment
// (DOCKER_HOST, ...), negotiating the API version: the engine may be older
// or newer than the SDK.
func NewDockerEngine() (*DockerEngine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return NewDocker(cli), nil
}

// NewDocker returns the Engine of cli, a client shared with other parts
// (the container engine of the same site): whoever made cli closes it.
func NewDocker(cli *client.Client) *DockerEngine { return &DockerEngine{cli: cli} }

// Close releases the client's connections.
func (d *DockerEngine) Close() error { return d.cli.Close() }

// Ping checks that the engine answers.
func (d *DockerEngine) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

func notFound(err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// ImageBuild implements Engine with the classic builder (what every engine
// since API 1.41 offers without a session).
func (d *DockerEngine) ImageBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions) (io.ReadCloser, error) {
	args := make(map[string]*string, len(opts.BuildArgs))
	for k, v := range opts.BuildArgs {
		args[k] = &v
	}
	resp, err := d.cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        opts.Tags,
		Dockerfile:  opts.Dockerfile,
		BuildArgs:   args,
		Labels:      opts.Labels,
		NoCache:     opts.NoCache,
		Remove:      true,
		ForceRemove: true,
	})
	if err != nil {
		return nil, fmt.Errorf("docker build: %w", err)
	}
	return resp.Body, nil
}

// ImageList implements Engine.
func (d *DockerEngine) ImageList(ctx context.Context, labels ...string) ([]ImageInfo, error) {
	f := filters.NewArgs()
	for _, l := range labels {
		f.Add("label", l)
	}
	list, err := d.cli.ImageList(ctx, image.ListOptions{Filters: f})
	for try := 0; imageref.ListAgain(ctx, err, try); try++ {
		list, err = d.cli.ImageList(ctx, image.ListOptions{Filters: f})
	}
	if err != nil {
		return nil, fmt.Errorf("docker image list: %w", err)
	}
	out := make([]ImageInfo, 0, len(list))
	for _, im := range list {
		// podman ORs label filters where Docker ANDs them: check them all
		// here too.
		if !hasLabels(im.Labels, labels) {
			continue
		}
		var tags []string
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				tags = append(tags, imageref.Familiar(t))
			}
		}
		out = append(out, ImageInfo{ID: im.ID, Tags: tags, Labels: im.Labels, Created: time.Unix(im.Created, 0), Digests: im.RepoDigests})
	}
	d.preciseTies(ctx, out)
	return out, nil
}

// preciseTies replaces the whole-second creation time the list gives with
// the inspected, nanosecond one for the images that share their second
// with another: builds of one image made within a second (cached layers,
// podman) would otherwise have no order, and Prune would keep the wrong
// ones. Only tied images are inspected, so a list of builds made at
// different times costs no inspect call.
func (d *DockerEngine) preciseTies(ctx context.Context, list []ImageInfo) {
	perSecond := map[int64]int{}
	for _, im := range list {
		perSecond[im.Created.Unix()]++
	}
	for i, im := range list {
		if perSecond[im.Created.Unix()] < 2 {
			continue
		}
		insp, err := d.cli.ImageInspect(ctx, im.ID)
		if err != nil {
			continue // gone since the list, or unreadable: keep the second
		}
		if t, err := time.Parse(time.RFC3339Nano, insp.Created); err == nil {
			list[i].Created = t
		}
	}
}

// hasLabels reports whether have matches every filter, each "key" or
// "key=value", as Docker's label filters do.
func hasLabels(have map[string]string, filters []string) bool {
	for _, f := range filters {
		k, v, withValue := strings.Cut(f, "=")
		got, ok := have[k]
		if !ok || (withValue && got != v) {
			return false
		}
	}
	return true
}

// ImageTag implements Engine.
func (d *DockerEngine) ImageTag(ctx context.Context, source, target string) error {
	if err := d.cli.ImageTag(ctx, source, target); err != nil {
		return fmt.Errorf("docker tag %s %s: %w", source, target, notFound(err))
	}
	return nil
}

// ImageRemove implements Engine; it never forces.
func (d *DockerEngine) ImageRemove(ctx context.Context, ref string) error {
	if _, err := d.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil {
		if errdefs.IsConflict(err) {
			err = fmt.Errorf("%w: %w", ErrInUse, err)
		}
		return fmt.Errorf("docker image remove %s: %w", ref, notFound(err))
	}
	return nil
}

// ContainerCreate implements Engine.
func (d *DockerEngine) ContainerCreate(ctx context.Context, cfg ContainerConfig) (string, error) {
	resp, err := d.cli.ContainerCreate(ctx,
		&container.Config{Image: cfg.Image, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Labels: cfg.Labels},
		&container.HostConfig{Binds: cfg.Binds}, nil, nil, cfg.Name)
	if err != nil {
		return "", fmt.Errorf("docker create %s: %w", cfg.Image, notFound(err))
	}
	return resp.ID, nil
}

// ContainerList implements Engine.
func (d *DockerEngine) ContainerList(ctx context.Context, labels ...string) ([]string, error) {
	f := filters.NewArgs()
	for _, l := range labels {
		f.Add("label", l)
	}
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker container list: %w", err)
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids, nil
}

// ContainerStart implements Engine.
func (d *DockerEngine) ContainerStart(ctx context.Context, id string) error {
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("docker start %s: %w", id, notFound(err))
	}
	return nil
}

// ContainerWait implements Engine.
func (d *DockerEngine) ContainerWait(ctx context.Context, id string) (int64, error) {
	okc, errc := d.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case r := <-okc:
		if r.Error != nil {
			return r.StatusCode, fmt.Errorf("docker wait %s: %s", id, r.Error.Message)
		}
		return r.StatusCode, nil
	case err := <-errc:
		return -1, fmt.Errorf("docker wait %s: %w", id, notFound(err))
	}
}

// ContainerLogs implements Engine.
func (d *DockerEngine) ContainerLogs(ctx context.Context, id string) (string, error) {
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", fmt.Errorf("docker logs %s: %w", id, notFound(err))
	}
	defer rc.Close()
	var b strings.Builder
	if _, err := stdcopy.StdCopy(&b, &b, rc); err != nil {
		return b.String(), fmt.Errorf("docker logs %s: %w", id, err)
	}
	return b.String(), nil
}

// ContainerRemove implements Engine.
func (d *DockerEngine) ContainerRemove(ctx context.Context, id string) error {
	err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("docker rm %s: %w", id, err)
	}
	return nil
}

// ContainerStatPath implements Engine.
func (d *DockerEngine) ContainerStatPath(ctx context.Context, id, path string) (FileStat, error) {
	st, err := d.cli.ContainerStatPath(ctx, id, path)
	if err != nil {
		return FileStat{}, fmt.Errorf("docker stat %s:%s: %w", id, path, notFound(err))
	}
	return FileStat{Mode: st.Mode, Size: st.Size, LinkTarget: st.LinkTarget}, nil
}

// ImagePush implements Pusher.
func (d *DockerEngine) ImagePush(ctx context.Context, ref, auth string) (io.ReadCloser, error) {
	rc, err := d.cli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		return nil, fmt.Errorf("docker push %s: %w", ref, notFound(err))
	}
	return rc, nil
}
