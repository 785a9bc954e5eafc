// Package fjtest builds test images that run the fake Jupyter server, and
// connects tests to the real engine.
package fjtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// RequireDocker returns a client of the real engine; see
// testenv.RequireDocker.
func RequireDocker(t testing.TB, opts ...client.Opt) *client.Client {
	t.Helper()
	return testenv.RequireDocker(t, opts...)
}

// Suffix returns a random suffix for test resource names.
func Suffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Binary compiles the fakejupyter command statically into a temp dir.
func Binary(t testing.TB) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	pkg := filepath.Join(filepath.Dir(here), "..", "cmd", "fakejupyter")
	out := filepath.Join(t.TempDir(), "fakejupyter")
	// Stripped: tests commit it into config repos that go-git then
	// fetches, packs and checks out.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fakejupyter: %v\n%s", err, b)
	}
	return out
}

// Build builds an image FROM scratch holding the fake server at
// /fakejupyter, tags it with each of tags, and returns its ID. A random
// label makes the ID unique to this call. The image carries the build
// labels nbh-sync's builder sets (image named after the first tag, a build
// key), so that a spawn takes it for one of the site's builds. The tags are
// removed at cleanup (after the test's containers, if their cleanup was
// registered later).
func Build(t testing.TB, cli *client.Client, bin string, tags ...string) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	nonce := Suffix()
	labels := "nbhtest.nonce=" + nonce
	if len(tags) > 0 {
		name, _, _ := strings.Cut(tags[0], ":")
		labels += fmt.Sprintf(" %s=%s %s=%s", images.LabelImage, name, images.LabelBuildKey, strings.Repeat(nonce, 8))
	}
	// The labels come first: a COPY layer shared through the build cache
	// with another test's image would be pruned by one cleanup while the
	// other build still uses it ("failed to get digest").
	dockerfile := fmt.Sprintf("FROM scratch\nLABEL %s\nCOPY fakejupyter /fakejupyter\nENTRYPOINT []\nCMD [\"/fakejupyter\"]\n", labels)
	id, err := testenv.BuildImage(ctx, cli, []testenv.File{{Name: "Dockerfile", Data: []byte(dockerfile)}, {Name: "fakejupyter", Mode: 0o755, Data: data}}, tags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, tag := range tags {
			_, _ = cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
		}
		// Images built FROM this one (course images, their untagged
		// layers) inherit its label: remove them too, children first.
		ims, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "nbhtest.nonce="+nonce))})
		if err != nil {
			return
		}
		slices.SortFunc(ims, func(a, b image.Summary) int { return cmp.Compare(b.Created, a.Created) })
		for _, im := range ims {
			_, _ = cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	return id
}

// Tag points ref at image id (moving it if it exists); the tag is removed
// at cleanup.
func Tag(t testing.TB, cli *client.Client, id, ref string) {
	t.Helper()
	if err := cli.ImageTag(context.Background(), id, ref); err != nil {
		t.Fatalf("tag %s as %s: %v", id, ref, err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

// CleanupContainers removes, at cleanup, every container whose name starts
// with prefix (volumes kept, as nbh-sync would).
func CleanupContainers(t testing.TB, cli *client.Client, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", prefix))})
		if err != nil {
			t.Logf("cleanup: list containers: %v", err)
			return
		}
		for _, c := range cs {
			for _, n := range c.Names {
				if strings.HasPrefix(strings.TrimPrefix(n, "/"), prefix) {
					_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
					break
				}
			}
		}
	})
}
