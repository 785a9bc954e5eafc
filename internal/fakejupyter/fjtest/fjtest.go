// Package fjtest builds test images that run the fake Jupyter server, and
// connects tests to the real engine.
package fjtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
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
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fakejupyter: %v\n%s", err, b)
	}
	return out
}

// Build builds an image FROM scratch holding the fake server at
// /fakejupyter, tags it with each of tags, and returns its ID. A random
// label makes the ID unique to this call. The tags are removed at cleanup
// (after the test's containers, if their cleanup was registered later).
func Build(t testing.TB, cli *client.Client, bin string, tags ...string) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY fakejupyter /fakejupyter\nLABEL nbhtest.nonce=%s\nENTRYPOINT []\nCMD [\"/fakejupyter\"]\n", Suffix())
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte(dockerfile)}, {"fakejupyter", 0o755, data}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: tags, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("build image: %v", err)
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
			t.Fatalf("build image: %v", err)
		}
		if msg.Error != "" {
			t.Fatalf("build image: %s", msg.Error)
		}
	}
	t.Cleanup(func() {
		for _, tag := range tags {
			_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	insp, err := cli.ImageInspect(ctx, tags[0])
	if err != nil {
		t.Fatalf("inspect built image: %v", err)
	}
	return insp.ID
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
