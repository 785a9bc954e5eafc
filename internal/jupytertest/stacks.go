package jupytertest

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

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

// Stacks returns the tag of testimages/stacks built on cli's engine:
// nbhtest-stacks:<digest of Image2's ID and the build context>. Like Image2
// it is a fixture that stays on the engine, built by the first test that
// needs it and reused by the others until its inputs change: its seven
// steps each walk Image2's whole tree on Docker's fuse-overlayfs, and a
// copy per test (removed with its untagged parents at the end, the cache
// with it) cost CI minutes. It skips the test when Image2 is missing
// (fails when NBH_REQUIRE_JUPYTER=1).
func Stacks(t testing.TB, cli *client.Client) string {
	t.Helper()
	RequireImage(t, cli, Image2)
	base, err := cli.ImageInspect(t.Context(), Image2)
	if err != nil {
		t.Fatalf("jupytertest: %v", err)
	}
	files := StacksFiles(t)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", base.ID)
	for _, f := range files {
		fmt.Fprintf(h, "%s %o %d\n", f.Name, f.Mode, len(f.Data))
		h.Write(f.Data)
	}
	tag := fmt.Sprintf("nbhtest-stacks:%x", h.Sum(nil)[:6])
	if _, err := cli.ImageInspect(t.Context(), tag); err == nil {
		return tag
	}
	// Tests that find it missing at once all build it: the engine's layer
	// cache makes the later builds cheap, and they tag the same image.
	if _, err := testenv.BuildImage(t.Context(), cli, files, tag); err != nil {
		t.Fatalf("jupytertest: build the docker-stacks-like base: %v", err)
	}
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
