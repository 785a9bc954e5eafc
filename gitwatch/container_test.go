package gitwatch

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
)

func requireDocker(t *testing.T) *client.Client { return testenv.RequireDocker(t) }

// readerSource prints the content of /course/version.txt each time it
// changes, and of any file it finds half-written (empty).
const readerSource = `package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	last := ""
	for {
		b, err := os.ReadFile("/course/version.txt")
		cur := string(b)
		if err != nil {
			cur = "error: " + err.Error()
		}
		if cur != last {
			fmt.Printf("seen [%s]\n", cur)
			last = cur
		}
		time.Sleep(20 * time.Millisecond)
	}
}
`

func randomName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "nbhtest-git-" + hex.EncodeToString(b)
}

// buildReaderImage builds a FROM scratch image running readerSource.
func buildReaderImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(readerSource), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module reader\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", "reader", ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build reader: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(src, "reader"))
	if err != nil {
		t.Fatal(err)
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{
		{"Dockerfile", []byte("FROM scratch\nCOPY reader /reader\nENTRYPOINT [\"/reader\"]\n"), 0o644},
		{"reader", bin, 0o755},
	} {
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
	tag := randomName(t) + ":latest"
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	resp, err := cli.ImageBuild(t.Context(), &ctxTar, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("image build: %s", out)
	}
	return tag
}

// TestCheckoutBindMountFollowsUpdates runs a container with the course
// work tree bind-mounted read-only and checks it sees each new revision.
func TestCheckoutBindMountFollowsUpdates(t *testing.T) {
	cli := requireDocker(t)
	f := testenv.NewRepo(t)
	var commits []string
	for _, v := range []string{"v1", "v2", "v3"} {
		commits = append(commits, f.Commit(t, map[string]string{"course/version.txt": v, "course/" + v + ".txt": v}, v))
	}
	repo, err := git.PlainOpen(f.Bare)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "courses", "c1")
	if err := Checkout(t.Context(), repo, plumbing.NewHash(commits[0]), "course", dest); err != nil {
		t.Fatal(err)
	}

	tag := buildReaderImage(t, cli)
	name := randomName(t)
	created, err := cli.ContainerCreate(t.Context(),
		&container.Config{Image: tag, Tty: true, Labels: map[string]string{"org.nbhosting.test": "gitwatch"}},
		&container.HostConfig{Binds: []string{dest + ":/course:ro"}}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(t.Context(), created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	waitSeen := func(v string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var logs []byte
		for time.Now().Before(deadline) {
			rc, err := cli.ContainerLogs(t.Context(), created.ID, container.LogsOptions{ShowStdout: true})
			if err != nil {
				t.Fatal(err)
			}
			logs, _ = io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(logs), "seen ["+v+"]") {
				return
			}
			time.Sleep(50 * time.Millisecond) // polling the engine for a condition
		}
		t.Fatalf("container never saw %s; logs:\n%s", v, logs)
	}
	waitSeen("v1")
	for i, v := range []string{"v2", "v3"} {
		if err := Checkout(t.Context(), repo, plumbing.NewHash(commits[i+1]), "course", dest); err != nil {
			t.Fatal(err)
		}
		waitSeen(v)
	}
	rc, err := cli.ContainerLogs(t.Context(), created.ID, container.LogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(rc)
	rc.Close()
	// Each state the container saw is a whole revision: never empty, never
	// an error.
	for _, line := range strings.Split(strings.TrimSpace(string(logs)), "\n") {
		line = strings.TrimSpace(line)
		if line != "seen [v1]" && line != "seen [v2]" && line != "seen [v3]" {
			t.Errorf("container saw a partial state: %q", line)
		}
	}
}
