package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/docker/docker/api/types/image"
)

// TestRemoveImagesKeepsFixtureCache: a test image's clean-up removes the
// build's own intermediate images, and keeps those built on a Jupyter
// fixture (FixtureLabel) as the next build's cache.
func TestRemoveImagesKeepsFixtureCache(t *testing.T) {
	cli := RequireDocker(t)
	ctx := t.Context()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	const mine = "org.nbhosting.test-rm"
	for _, tc := range []struct {
		name, dockerfile string
		kept             bool
	}{
		{"own chain", "FROM scratch\nCOPY a /a\nLABEL " + mine + "=own-" + id + "\n", false},
		{"on a fixture", "FROM scratch\nLABEL " + FixtureLabel + "=probe-" + id + "\nCOPY a /a\nLABEL " + mine + "=fix-" + id + "\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag := "nbhtest-rm-" + id + ":latest"
			// The file's content is the test's own: no other build's
			// cached step can stand in for it.
			top, err := BuildImage(ctx, cli, []File{{Name: "Dockerfile", Data: []byte(tc.dockerfile)}, {Name: "a", Data: []byte(tc.name + id)}}, tag)
			if err != nil {
				t.Fatal(err)
			}
			hist, err := cli.ImageHistory(ctx, top)
			if err != nil || len(hist) < 2 || hist[1].ID == "<missing>" {
				t.Fatalf("history of %s: %+v, %v", top, hist, err)
			}
			copied := hist[1].ID // the COPY step's image, under the last LABEL
			t.Cleanup(func() {
				_, _ = cli.ImageRemove(context.Background(), copied, image.RemoveOptions{Force: true, PruneChildren: true})
			})
			RemoveImagesLabelled(cli, mine, "own-"+id, "fix-"+id)
			if _, err := cli.ImageInspect(ctx, top); err == nil {
				t.Fatalf("%s not removed", tag)
			}
			_, err = cli.ImageInspect(ctx, copied)
			if kept := err == nil; kept != tc.kept {
				t.Errorf("the build's intermediate image kept: %v, want %v", kept, tc.kept)
			}
		})
	}
}
