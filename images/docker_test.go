package images

import (
	"archive/tar"
	"bytes"
	"context"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// requireDocker returns the real engine, or skips the test when none
// answers — except under NBH_REQUIRE_DOCKER=1, where it fails.
func requireDocker(t *testing.T) *DockerEngine {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	// Skips, fails or checks for podman as every engine test does.
	testenv.RequireDocker(t)
	fail := t.Skipf
	if os.Getenv("NBH_REQUIRE_DOCKER") == "1" {
		fail = t.Fatalf
	}
	eng, err := NewDockerEngine()
	if err != nil {
		fail("docker: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testenv.EngineTimeout)
	defer cancel()
	if err := eng.Ping(ctx); err != nil {
		fail("no docker engine: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// isPodman reports whether eng is podman's Docker-compatible API.
func isPodman(t *testing.T, eng *DockerEngine) bool {
	ok, err := testenv.IsPodman(t.Context(), eng.cli)
	if err != nil {
		t.Fatalf("engine version: %v", err)
	}
	return ok
}

var tool struct {
	once sync.Once
	data []byte
	err  error
}

// toolBinary compiles testdata/tool statically, once per test run.
func toolBinary(t *testing.T) []byte {
	t.Helper()
	tool.once.Do(func() {
		dir, err := os.MkdirTemp("", "nbhtest-img-tool")
		if err != nil {
			tool.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "tool")
		cmd := exec.Command(filepath.Join(build.Default.GOROOT, "bin", "go"), "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/tool")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			tool.err = &exec.ExitError{Stderr: b}
			return
		}
		tool.data, tool.err = os.ReadFile(out)
	})
	if tool.err != nil {
		t.Fatalf("build test tool: %v", tool.err)
	}
	return tool.data
}

// testName is a fresh image name with the test prefix.
func testName(t *testing.T, what string) string {
	return "nbhtest-img-" + what + "-" + randHex(4)
}

// tarFiles writes a build context from memory: mode 0 means 0644.
type ctxFile struct {
	data string
	mode int64
}

func tarFiles(t *testing.T, files map[string]ctxFile) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, f := range files {
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	tw.Close()
	return &buf
}

// engineBuild builds a context directly on the engine (no Builder) and
// returns the image ID; the image and its tag go at cleanup. No cache: the
// engine is shared, and a cached layer may vanish with another test's clean-up.
func engineBuild(t *testing.T, eng *DockerEngine, tag string, files map[string]ctxFile, labels map[string]string) string {
	t.Helper()
	b := NewBuilder(eng, Options{})
	id, err := b.runBuild(t.Context(), tarFiles(t, files), BuildOptions{Tags: []string{tag}, Dockerfile: "Dockerfile", Labels: labels, NoCache: true}, testLog(t))
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	t.Cleanup(func() { eng.ImageRemove(context.Background(), tag) })
	return id
}

// baseImage builds, FROM scratch, an image holding the test tool as
// /bin/tool, and returns its tag.
func baseImage(t *testing.T, eng *DockerEngine) string {
	t.Helper()
	tag := testName(t, "base") + ":v1"
	engineBuild(t, eng, tag, map[string]ctxFile{
		"Dockerfile": {data: "FROM scratch\nCOPY tool /bin/tool\n"},
		"tool":       {data: string(toolBinary(t)), mode: 0o755},
	}, nil)
	return tag
}

// cleanupImage removes every build of image at the end of the test.
func cleanupImage(t *testing.T, eng *DockerEngine, image string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := eng.ImageList(ctx, LabelImage+"="+image)
		for _, im := range list {
			for _, tag := range im.Tags {
				eng.ImageRemove(ctx, tag)
			}
			eng.ImageRemove(ctx, im.ID)
		}
	})
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	if line := strings.TrimSpace(string(p)); line != "" {
		w.t.Log(line)
	}
	return len(p), nil
}

func testLog(t *testing.T) tlog { return tlog{t} }

// run runs cmd in a throwaway container of image and returns its exit
// status and output.
func run(t *testing.T, eng *DockerEngine, image string, cfg ContainerConfig) (int64, string) {
	t.Helper()
	ctx := t.Context()
	cfg.Image = image
	cfg.Name = testName(t, "run")
	id, err := eng.ContainerCreate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.ContainerRemove(context.Background(), id) })
	if err := eng.ContainerStart(ctx, id); err != nil {
		t.Fatal(err)
	}
	code, err := eng.ContainerWait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := eng.ContainerLogs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// Gone now, so that it holds no image the test prunes next.
	if err := eng.ContainerRemove(ctx, id); err != nil {
		t.Fatal(err)
	}
	return code, out
}
