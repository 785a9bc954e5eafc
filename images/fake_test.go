package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeEngine is an Engine of function fields; a nil field fails the call.
type fakeEngine struct {
	ImageBuildFn        func(ctx context.Context, r io.Reader, o BuildOptions) (io.ReadCloser, error)
	ImageListFn         func(ctx context.Context, labels ...string) ([]ImageInfo, error)
	ImageTagFn          func(ctx context.Context, source, target string) error
	ImageRemoveFn       func(ctx context.Context, ref string) error
	ContainerCreateFn   func(ctx context.Context, cfg ContainerConfig) (string, error)
	ContainerStartFn    func(ctx context.Context, id string) error
	ContainerWaitFn     func(ctx context.Context, id string) (int64, error)
	ContainerLogsFn     func(ctx context.Context, id string) (string, error)
	ContainerListFn     func(ctx context.Context, labels ...string) ([]string, error)
	ContainerRemoveFn   func(ctx context.Context, id string) error
	ContainerStatPathFn func(ctx context.Context, id, path string) (FileStat, error)
}

var _ Engine = (*fakeEngine)(nil)

var errUnset = errors.New("fake: not set")

func (f *fakeEngine) ImageBuild(ctx context.Context, r io.Reader, o BuildOptions) (io.ReadCloser, error) {
	if f.ImageBuildFn == nil {
		return nil, errUnset
	}
	return f.ImageBuildFn(ctx, r, o)
}
func (f *fakeEngine) ImageList(ctx context.Context, labels ...string) ([]ImageInfo, error) {
	if f.ImageListFn == nil {
		return nil, errUnset
	}
	return f.ImageListFn(ctx, labels...)
}
func (f *fakeEngine) ImageTag(ctx context.Context, s, t string) error {
	if f.ImageTagFn == nil {
		return errUnset
	}
	return f.ImageTagFn(ctx, s, t)
}
func (f *fakeEngine) ImageRemove(ctx context.Context, ref string) error {
	if f.ImageRemoveFn == nil {
		return errUnset
	}
	return f.ImageRemoveFn(ctx, ref)
}
func (f *fakeEngine) ContainerCreate(ctx context.Context, cfg ContainerConfig) (string, error) {
	if f.ContainerCreateFn == nil {
		return "", errUnset
	}
	return f.ContainerCreateFn(ctx, cfg)
}
func (f *fakeEngine) ContainerStart(ctx context.Context, id string) error {
	if f.ContainerStartFn == nil {
		return errUnset
	}
	return f.ContainerStartFn(ctx, id)
}
func (f *fakeEngine) ContainerWait(ctx context.Context, id string) (int64, error) {
	if f.ContainerWaitFn == nil {
		return -1, errUnset
	}
	return f.ContainerWaitFn(ctx, id)
}
func (f *fakeEngine) ContainerLogs(ctx context.Context, id string) (string, error) {
	if f.ContainerLogsFn == nil {
		return "", errUnset
	}
	return f.ContainerLogsFn(ctx, id)
}

// ContainerList finds no container unless set.
func (f *fakeEngine) ContainerList(ctx context.Context, labels ...string) ([]string, error) {
	if f.ContainerListFn == nil {
		return nil, nil
	}
	return f.ContainerListFn(ctx, labels...)
}
func (f *fakeEngine) ContainerRemove(ctx context.Context, id string) error {
	if f.ContainerRemoveFn == nil {
		return errUnset
	}
	return f.ContainerRemoveFn(ctx, id)
}
func (f *fakeEngine) ContainerStatPath(ctx context.Context, id, p string) (FileStat, error) {
	if f.ContainerStatPathFn == nil {
		return FileStat{}, errUnset
	}
	return f.ContainerStatPathFn(ctx, id, p)
}

// imageStore backs a fakeEngine with a map of images: just enough of tags,
// labels and builds for the Builder's rules. A Dockerfile containing
// "FAIL" fails to build; scriptMode is what the smoke stat returns.
type imageStore struct {
	mu         sync.Mutex
	images     map[string]*ImageInfo
	builds     int // builds other than commit steps
	noCache    int
	scriptMode FileStat
	seq        int
	dockerfile string // of the last build
}

func newStore() (*imageStore, *fakeEngine) {
	s := &imageStore{images: map[string]*ImageInfo{}, scriptMode: FileStat{Mode: 0o755}}
	f := &fakeEngine{
		ImageBuildFn: s.build,
		ImageListFn: func(_ context.Context, labels ...string) ([]ImageInfo, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			var out []ImageInfo
			for _, im := range s.images {
				ok := true
				for _, l := range labels {
					k, v, withValue := strings.Cut(l, "=")
					got, has := im.Labels[k]
					ok = ok && has && (!withValue || got == v)
				}
				if ok {
					c := *im
					c.Tags, c.Labels = slices.Clone(im.Tags), maps.Clone(im.Labels)
					out = append(out, c)
				}
			}
			return out, nil
		},
		ImageTagFn: func(_ context.Context, src, target string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			im := s.lookup(src)
			if im == nil {
				return fmt.Errorf("tag %s: %w", src, ErrNotFound)
			}
			s.untag(target)
			im.Tags = append(im.Tags, target)
			return nil
		},
		ImageRemoveFn: func(_ context.Context, ref string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if im, ok := s.images[ref]; ok {
				delete(s.images, im.ID)
				return nil
			}
			im := s.lookup(ref)
			if im == nil {
				return fmt.Errorf("remove %s: %w", ref, ErrNotFound)
			}
			// As the engine does: removing an image's last tag removes it.
			s.untag(ref)
			if len(im.Tags) == 0 {
				delete(s.images, im.ID)
			}
			return nil
		},
		ContainerCreateFn: func(context.Context, ContainerConfig) (string, error) { return "c1", nil },
		ContainerRemoveFn: func(context.Context, string) error { return nil },
		ContainerStatPathFn: func(context.Context, string, string) (FileStat, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.scriptMode, nil
		},
	}
	return s, f
}

func (s *imageStore) lookup(ref string) *ImageInfo {
	if im, ok := s.images[ref]; ok {
		return im
	}
	for _, im := range s.images {
		if slices.Contains(im.Tags, ref) {
			return im
		}
	}
	return nil
}

func (s *imageStore) untag(ref string) {
	for _, im := range s.images {
		im.Tags = slices.DeleteFunc(im.Tags, func(t string) bool { return t == ref })
	}
}

// add puts an image in the store directly (a build from an earlier run).
func (s *imageStore) add(tags []string, labels map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("sha256:%064d", s.seq)
	for _, t := range tags {
		s.untag(t)
	}
	s.images[id] = &ImageInfo{ID: id, Tags: tags, Labels: labels, Created: time.Unix(int64(s.seq), 0)}
	return id
}

func (s *imageStore) build(_ context.Context, r io.Reader, o BuildOptions) (io.ReadCloser, error) {
	var df string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Name == o.Dockerfile {
			b, _ := io.ReadAll(tr)
			df = string(b)
		}
	}
	if strings.Contains(df, "FAIL") {
		return io.NopCloser(strings.NewReader(`{"stream":"Step 1/2 : RUN FAIL\n"}` + "\n" + `{"errorDetail":{"message":"FAIL: exit 1"},"error":"FAIL: exit 1"}` + "\n")), nil
	}
	labels := maps.Clone(o.Labels)
	s.mu.Lock()
	s.builds++
	s.dockerfile = df
	if o.NoCache {
		s.noCache++
	}
	s.mu.Unlock()
	id := s.add(o.Tags, labels)
	return io.NopCloser(strings.NewReader(`{"stream":"Step 1/1 : built\n"}` + "\n" + `{"aux":{"ID":"` + id + `"}}` + "\n")), nil
}

func (s *imageStore) counts() (builds, noCache int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builds, s.noCache
}

// tagged returns the ID the reference points at, or "".
func (s *imageStore) tagged(ref string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if im := s.lookup(ref); im != nil {
		return im.ID
	}
	return ""
}
