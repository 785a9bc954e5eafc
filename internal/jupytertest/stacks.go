package jupytertest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// Image2 is the jupyter_server 2.15 image (Debian trixie) that
// testimages/jupyter/build.sh --gen 2 builds: Start runs it for
// FlavorServer2, and the docker-stacks-like base is built on it.
const Image2 = "nbhtest-jupyter2:latest"

// StacksFiles returns the build context of testimages/stacks: a base that
// behaves like jupyter/docker-stacks' images (an ENTRYPOINT that hands over
// to jovyan when started as root, USER 1000, CMD jupyter lab).
func StacksFiles(t testing.TB) []testenv.File {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "testimages", "stacks")
	var files []testenv.File
	for _, name := range []string{"Dockerfile", "start.sh", "jupyter"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("jupytertest: %v", err)
		}
		mode := int64(0o644)
		if name != "Dockerfile" {
			mode = 0o755
		}
		files = append(files, testenv.File{Name: name, Mode: mode, Data: b})
	}
	return files
}

// Stacks builds testimages/stacks on cli's engine under a tag of its own
// (NamePrefix and a random suffix), untagged when the test ends, and
// returns the tag. It skips the test when Image2 is missing (fails when
// NBH_REQUIRE_JUPYTER=1).
func Stacks(t testing.TB, cli *client.Client) string {
	t.Helper()
	RequireImage(t, cli, Image2)
	tag := NamePrefix + "stacks-" + randomHex(4) + ":latest"
	if _, err := testenv.BuildImage(t.Context(), cli, StacksFiles(t), tag); err != nil {
		t.Fatalf("jupytertest: build the docker-stacks-like base: %v", err)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{PruneChildren: true})
	})
	return tag
}

// RequireImage skips the test when ref is not on cli's engine, or fails it
// when NBH_REQUIRE_JUPYTER=1.
func RequireImage(t testing.TB, cli *client.Client, ref string) {
	t.Helper()
	if _, err := cli.ImageInspect(t.Context(), ref); err != nil {
		fail := t.Skipf
		if os.Getenv(RequireEnv) == "1" {
			fail = t.Fatalf
		}
		fail("jupyter test image %s unavailable (testimages/jupyter/build.sh builds it; podman needs it imported): %v", ref, err)
	}
}
