// Package build benchmarks an image build through images.Builder against
// the engine's own build of the same context, side by side.
package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
)

// fixture is a course repo on disk whose docker-image/ holds nfiles files
// of size bytes each, committed with go-git; base is a plain directory with
// the same context for the baseline.
func fixture(b *testing.B, name string, nfiles, size int) (spec *images.Spec, base string) {
	b.Helper()
	repoDir := b.TempDir()
	base = b.TempDir()
	df := "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY data/ /data/\nENV A=1\n"
	write := func(rel string, data []byte, mode os.FileMode) {
		for _, root := range []string{filepath.Join(repoDir, "docker-image"), base} {
			p := filepath.Join(root, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, data, mode); err != nil {
				b.Fatal(err)
			}
		}
	}
	write("nbhosting.Dockerfile", []byte(df), 0o644)
	for i := range nfiles {
		data := make([]byte, size)
		rand.Read(data)
		write(fmt.Sprintf("data/f%03d.bin", i), data, 0o644)
	}
	if err := os.WriteFile(filepath.Join(base, manifest.StartScript), images.StartScript, 0o755); err != nil {
		b.Fatal(err)
	}

	repo, err := git.PlainInit(repoDir, false)
	if err != nil {
		b.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if err := wt.AddGlob("docker-image"); err != nil {
		b.Fatal(err)
	}
	h, err := wt.Commit("fixture", &git.CommitOptions{Author: &object.Signature{Name: "bench", Email: "b@x", When: time.Unix(0, 0)}})
	if err != nil {
		b.Fatal(err)
	}
	commit, _ := repo.CommitObject(h)
	tree, _ := commit.Tree()
	cfg, _, err := manifest.Parse("courses.yaml", []byte(fmt.Sprintf("version: 1\ncourses:\n  %s: {repo: file:///x}\n", name)))
	if err != nil {
		b.Fatal(err)
	}
	spec, err = images.NewSpec(cfg, name, images.Trees{Course: func(string) (*object.Tree, string, string, error) {
		return tree, "", "file://" + repoDir + "@" + h.String()[:12] + ":", nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	return spec, base
}

// engineBuild is the baseline: the tar CLI makes the context from the
// directory, the SDK sends it, nothing else.
func engineBuild(ctx context.Context, eng *images.DockerEngine, dir, tag string, labels map[string]string) error {
	tarCmd := exec.CommandContext(ctx, "tar", "-C", dir, "-cf", "-", ".")
	out, err := tarCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := tarCmd.Start(); err != nil {
		return err
	}
	rc, err := eng.ImageBuild(ctx, out, images.BuildOptions{Tags: []string{tag}, Dockerfile: "nbhosting.Dockerfile", Labels: labels, NoCache: true})
	if err != nil {
		tarCmd.Wait()
		return err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if werr := tarCmd.Wait(); err == nil {
		err = werr
	}
	if err == nil && bytes.Contains(body, []byte(`"error"`)) {
		err = fmt.Errorf("build failed: %s", body)
	}
	return err
}

// BenchmarkBuildVsEngine alternates, in one run, a forced (no-cache)
// Builder.Ensure — context from git objects, build, smoke test, commit,
// tags — and the engine's own no-cache build of the same context; it
// reports both times and their ratio.
func BenchmarkBuildVsEngine(b *testing.B) {
	eng, err := images.NewDockerEngine()
	if err != nil {
		b.Skip(err)
	}
	ctx := b.Context()
	if err := eng.Ping(ctx); err != nil {
		b.Skipf("no docker engine: %v", err)
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "nbhtest-img-bench-" + hex.EncodeToString(suffix)
	spec, base := fixture(b, name, 64, 128<<10) // 8 MiB of context
	baseTag := name + "-engine:v1"
	b.Cleanup(func() {
		bg := context.Background()
		list, _ := eng.ImageList(bg, images.LabelImage+"="+name)
		for _, im := range list {
			for _, t := range im.Tags {
				eng.ImageRemove(bg, t)
			}
			eng.ImageRemove(bg, im.ID)
		}
		eng.ImageRemove(bg, baseTag)
	})
	builder := images.NewBuilder(eng, images.Options{Concurrency: 1, Timeout: 5 * time.Minute})
	labels := map[string]string{images.LabelImage: name + "-engine", images.LabelBuildKey: spec.Key, images.LabelSource: spec.Source}

	// Warm-up: both paths once, untimed.
	if _, err := builder.Ensure(ctx, spec, images.EnsureOptions{Force: true}); err != nil {
		b.Fatal(err)
	}
	if err := engineBuild(ctx, eng, base, baseTag, labels); err != nil {
		b.Fatal(err)
	}
	var ours, theirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := builder.Ensure(ctx, spec, images.EnsureOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := engineBuild(ctx, eng, base, baseTag, labels); err != nil {
			b.Fatal(err)
		}
		ours += t1.Sub(t0)
		theirs += time.Since(t1)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n*1000, "nbh-ms/op")
	b.ReportMetric(theirs.Seconds()/n*1000, "engine-ms/op")
	b.ReportMetric(float64(ours)/float64(theirs), "ratio")
	// Keep only the builds this run needs.
	builder.Prune(context.Background(), name, nil)
}
