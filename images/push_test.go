package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// pushingEngine is the fake engine plus ImagePush: a push records a digest
// on the image, as the engine does, or fails when fail is set.
type pushingEngine struct {
	*fakeEngine
	st     *imageStore
	fail   bool
	pushed []string
	auth   []string
}

var _ Pusher = (*pushingEngine)(nil)

func (p *pushingEngine) ImagePush(_ context.Context, ref, auth string) (io.ReadCloser, error) {
	p.pushed, p.auth = append(p.pushed, ref), append(p.auth, auth)
	if p.fail {
		return io.NopCloser(strings.NewReader(`{"errorDetail":{"message":"connection refused"},"error":"connection refused"}` + "\n")), nil
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	im := p.st.lookup(ref)
	if im == nil {
		return nil, fmt.Errorf("push %s: %w", ref, ErrNotFound)
	}
	digest := "sha256:" + strings.Repeat("d", 56) + im.ID[len(im.ID)-8:]
	im.Digests = append(im.Digests, ref[:strings.LastIndex(ref, ":")]+"@"+digest)
	return io.NopCloser(strings.NewReader(`{"status":"pushed"}` + "\n" + `{"aux":{"Tag":"x","Digest":"` + digest + `","Size":1}}` + "\n")), nil
}

// TestPushToRegistry: with a registry, a build is pushed after its smoke
// test and before it is published; a failed push publishes nothing; a
// passed build or a pinned one that is not in the registry is pushed when
// it is served.
func TestPushToRegistry(t *testing.T) {
	const reg = "127.0.0.1:5000"
	tests := []struct {
		name string
		run  func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder)
	}{
		{"build is pushed, then published", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			res, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{reg + "/i:aaaaaaaaaaaa"}; !slices.Equal(p.pushed, want) {
				t.Errorf("pushed %q, want %q", p.pushed, want)
			}
			if p.auth[0] != RegistryAuth("", "") || p.auth[0] == "" {
				t.Errorf("auth header %q, want the encoded empty credentials", p.auth[0])
			}
			if !strings.Contains(res.Log, "pushed "+reg+"/i@sha256:") {
				t.Errorf("log does not show the digest: %q", res.Log)
			}
			if st.tagged("i:latest") != res.ImageID {
				t.Error("latest not moved")
			}
		}},
		{"failed push publishes nothing", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			p.fail = true
			_, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
			var be *BuildError
			if !errors.As(err, &be) || be.Stage != "push" || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("err = %v, want a push BuildError", err)
			}
			if st.tagged("i:latest") != "" || st.tagged("i:aaaaaaaaaaaa") != "" {
				t.Error("a build that was not pushed got published")
			}
			if st.tagged(reg+"/i:aaaaaaaaaaaa") != "" {
				t.Error("a failed push left its registry tag behind")
			}
		}},
		{"credentials are asked at each push", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			asked := 0
			b.opts.RegistryAuth = func() (string, error) { asked++; return "ZW5jb2RlZA==", nil }
			if _, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{}); err != nil {
				t.Fatal(err)
			}
			if asked != 1 || p.auth[0] != "ZW5jb2RlZA==" {
				t.Errorf("asked %d times, header %q", asked, p.auth[0])
			}
		}},
		{"unreadable credentials: no push, no tag", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			b.opts.RegistryAuth = func() (string, error) { return "", errors.New("/etc/creds.json: readable by others") }
			_, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
			if err == nil || !strings.Contains(err.Error(), "readable by others") || len(p.pushed) != 0 {
				t.Fatalf("err = %v, pushed %q", err, p.pushed)
			}
			if st.tagged(reg+"/i:aaaaaaaaaaaa") != "" || st.tagged("i:latest") != "" {
				t.Error("tagged without a push")
			}
		}},
		{"passed build not in the registry is pushed", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			id := st.add([]string{"i:aaaaaaaaaaaa"}, map[string]string{LabelImage: "i", LabelBuildKey: keyA})
			res, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{})
			if err != nil || res.Built || res.ImageID != id {
				t.Fatalf("Ensure = %+v, %v", res, err)
			}
			if len(p.pushed) != 1 {
				t.Errorf("pushed %q, want the kept build once", p.pushed)
			}
			if _, err := b.Ensure(t.Context(), testSpec("i", keyA, goodDockerfile), EnsureOptions{}); err != nil || len(p.pushed) != 1 {
				t.Errorf("second Ensure pushed again: %q, %v", p.pushed, err)
			}
		}},
		{"pin serves an earlier build, pushed by its own key", func(t *testing.T, st *imageStore, p *pushingEngine, b *Builder) {
			old := st.add([]string{"i:bbbbbbbbbbbb"}, map[string]string{LabelImage: "i", LabelBuildKey: keyB})
			spec := testSpec("i", keyA, goodDockerfile)
			spec.Pin = "bbbbbbbbbbbb"
			res, err := b.Ensure(t.Context(), spec, EnsureOptions{})
			if err != nil || res.ImageID != old {
				t.Fatalf("Ensure = %+v, %v", res, err)
			}
			if want := []string{reg + "/i:bbbbbbbbbbbb"}; !slices.Equal(p.pushed, want) {
				t.Errorf("pushed %q, want %q", p.pushed, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, eng := newStore()
			p := &pushingEngine{fakeEngine: eng, st: st}
			b := NewBuilder(p, Options{Concurrency: 1, Registry: reg})
			tt.run(t, st, p, b)
		})
	}
}
