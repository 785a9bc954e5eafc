package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/imageref"
)

// File is one file of a build context.
type File struct {
	Name string
	Mode int64 // 0o644 when zero
	Data []byte
}

// BuildImage builds files (a Dockerfile among them) on the engine, tagged
// with tags, and returns the image ID. It is for tests and benchmarks that
// need images of their own (nothing can be pulled); the product builds
// through package images.
//
// Test packages run side by side on one engine and remove their images as
// they end: a build whose cached step's image is removed meanwhile fails
// (imageref.BuildRaced), so such a build runs again, twice at most.
func BuildImage(ctx context.Context, cli *client.Client, files []File, tags ...string) (string, error) {
	for attempt := 1; ; attempt++ {
		id, err := buildImage(ctx, cli, files, tags)
		if err == nil || !imageref.BuildRaced(err) || attempt == 3 {
			return id, err
		}
	}
}

func buildImage(ctx context.Context, cli *client.Client, files []File, tags []string) (string, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: mode, Size: int64(len(f.Data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: tags, Remove: true, ForceRemove: true})
	if err != nil {
		return "", fmt.Errorf("build %v: %w", tags, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			return "", fmt.Errorf("build %v: %w", tags, err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("build %v: %s", tags, msg.Error)
		}
	}
	insp, err := cli.ImageInspect(ctx, tags[0])
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", tags[0], err)
	}
	return insp.ID, nil
}

// RemoveImagesLabelled removes every image whose label key has one of
// values, also when some are built FROM others (see RemoveImagesWhere).
func RemoveImagesLabelled(cli *client.Client, key string, values ...string) {
	RemoveImagesWhere(cli, func(labels map[string]string) bool {
		v, ok := labels[key]
		return ok && slices.Contains(values, v)
	})
}

// RemoveImagesWhere removes every image whose labels mine says is the
// test's, also when some are built FROM others: a base cannot go before
// its children, so rounds go on while they remove something. Errors are
// ignored: it is for test clean-ups.
func RemoveImagesWhere(cli *client.Client, mine func(labels map[string]string) bool) {
	ctx := context.Background()
	for removed := true; removed; {
		removed = false
		imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true})
		for _, im := range imgs {
			if mine(im.Labels) && removeImage(ctx, cli, im.ID) == nil {
				removed = true
			}
		}
	}
}

// FixtureLabel marks the Jupyter images of testimages/jupyter/build.sh;
// every image built on them inherits it.
const FixtureLabel = "org.nbhosting.test-image"

// removeImage removes image id, then its untagged parents (a build's
// intermediate images), up to the first that is shared: tagged, or built
// on a Jupyter fixture (FixtureLabel). Those stay as the engine's build
// cache: the next test's build of the same steps on the same fixture
// reuses them instead of walking the fixture's 20,000 files once a step
// (as Docker's fuse-overlayfs driver does on each commit). .ci/run sweeps
// them at the end (docker image prune --filter label=FixtureLabel).
func removeImage(ctx context.Context, cli *client.Client, id string) error {
	// The history lists the image, then each parent the engine has (the
	// others are "<missing>"), before the removal takes the chain apart.
	hist, err := cli.ImageHistory(ctx, id)
	if err != nil {
		return err
	}
	if _, err := cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true}); err != nil {
		return err
	}
	if len(hist) > 0 {
		hist = hist[1:]
	}
	for _, h := range hist {
		if h.ID == "" || h.ID == "<missing>" || len(h.Tags) > 0 {
			return nil
		}
		parent, err := cli.ImageInspect(ctx, h.ID)
		if err != nil || parent.Config != nil && parent.Config.Labels[FixtureLabel] != "" {
			return nil
		}
		// Refused while another image still grows from it: it stays.
		if _, err := cli.ImageRemove(ctx, h.ID, image.RemoveOptions{}); err != nil {
			return nil
		}
	}
	return nil
}

// Served reports whether any of tags serves image: any tag but the scratch
// tag of a build in progress (I:build-<short key>). A build that carries
// one must have passed its smoke test.
func Served(image string, tags []string) bool {
	return slices.ContainsFunc(tags, func(t string) bool {
		return strings.HasPrefix(t, image+":") && !strings.HasPrefix(t, image+":build-")
	})
}
