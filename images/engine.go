package images

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// Engine is the few container-engine calls the Builder makes. DockerEngine
// is the real one; tests use a fake. Every call honours ctx.
type Engine interface {
	// ImageBuild sends a tar build context and returns the engine's JSON
	// message stream, which the caller reads to the end and closes. Closing
	// it early or cancelling ctx cancels the build.
	ImageBuild(ctx context.Context, buildContext io.Reader, opts BuildOptions) (io.ReadCloser, error)
	// ImageList returns the images that carry every one of labels (each
	// "key" or "key=value").
	ImageList(ctx context.Context, labels ...string) ([]ImageInfo, error)
	// ImageTag makes target (repo:tag) point at source (an ID or a reference).
	ImageTag(ctx context.Context, source, target string) error
	// ImageRemove removes a reference or an image ID; it fails with an
	// error matching ErrNotFound when there is none, and refuses an image a
	// container uses.
	ImageRemove(ctx context.Context, ref string) error
	// ContainerCreate creates (does not start) a container and returns its ID.
	ContainerCreate(ctx context.Context, cfg ContainerConfig) (string, error)
	// ContainerStart starts a created container.
	ContainerStart(ctx context.Context, id string) error
	// ContainerWait waits until the container exits and returns its status.
	ContainerWait(ctx context.Context, id string) (int64, error)
	// ContainerLogs returns the container's stdout and stderr, interleaved.
	ContainerLogs(ctx context.Context, id string) (string, error)
	// ContainerList returns the IDs of the containers, in any state, that
	// carry every one of labels (each "key=value").
	ContainerList(ctx context.Context, labels ...string) ([]string, error)
	// ContainerRemove removes a container, running or not; a missing one is
	// not an error.
	ContainerRemove(ctx context.Context, id string) error
	// ContainerStatPath describes a path in a container's file system
	// (created containers included) without running anything in it; it
	// does not follow a final symlink.
	ContainerStatPath(ctx context.Context, id, path string) (FileStat, error)
}

// ErrNotFound is matched (errors.Is) by Engine errors about a missing image,
// container or path.
var ErrNotFound = errors.New("not found")

// ErrInUse is matched by an ImageRemove error about an image a container
// uses (one the site does not know of: a smoke test's left by a process
// killed during it, say).
var ErrInUse = errors.New("in use by a container")

// BuildOptions are the engine-side options of one build.
type BuildOptions struct {
	// Tags are repo:tag references given to the image when the build
	// succeeds.
	Tags []string
	// Dockerfile is the Dockerfile's path in the context.
	Dockerfile string
	BuildArgs  map[string]string
	Labels     map[string]string
	// NoCache disables the engine's layer cache.
	NoCache bool
}

// ImageInfo is what the Builder needs to know of an image.
type ImageInfo struct {
	ID      string
	Tags    []string // repo:tag references
	Labels  map[string]string
	Created time.Time
	// Digests are the repository digests (registry/repo@sha256:…) of the
	// pushes of this image.
	Digests []string
}

// ContainerConfig describes a throwaway container.
type ContainerConfig struct {
	Name       string
	Image      string
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
	// Binds are host:container[:ro] bind mounts (tests).
	Binds []string
}

// FileStat describes a path in a container.
type FileStat struct {
	Mode       os.FileMode
	Size       int64
	LinkTarget string
}
