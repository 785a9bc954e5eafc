// Package images builds course images: the build spec taken from git
// objects, its content-addressed build key, Dockerfile lint, and a Builder
// that builds, smoke-tests and publishes images through a small Engine
// interface. docker.go is the only file that imports the Docker SDK.
package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/dockerfile"
	"github.com/nbhosting/nbh-sync/manifest"
)

// keyFormat versions the build key: bump it whenever what goes into the key
// or into the context changes, so that every image is rebuilt once.
const keyFormat = "nbh-sync build key v2"

// ShortKeyLen is the length of the build-key tag (I:<first 12 hex>).
const ShortKeyLen = 12

// Trees is what NewSpec reads: git trees at exact commits, never a working
// copy. It implements manifest.Sources. Like the go-git trees it holds
// (they cache lookups), it is not safe for concurrent use: make the specs,
// then build them concurrently.
type Trees struct {
	// Config is the config repo's tree at its commit.
	Config *object.Tree
	// ConfigDir is the directory of courses.yaml inside Config ("" for the
	// root); config paths of courses.yaml are relative to it.
	ConfigDir string
	// ConfigSource names the config commit as repo@commit; the Dockerfile's
	// path in the repo is appended for the org.nbhosting.source label.
	ConfigSource string
	// Course returns a course repo's tree at its branch head, the course
	// root inside it (its path:) and the label repo@commit:path. A nil tree
	// with a nil error means the repo has not been fetched yet.
	Course func(course string) (tree *object.Tree, root, source string, err error)
}

var _ manifest.Sources = Trees{}

// ConfigFile reports whether p (relative to ConfigDir) is a file of the
// config tree.
func (t Trees) ConfigFile(p string) bool {
	if t.Config == nil {
		return false
	}
	_, err := t.Config.File(path.Join(t.ConfigDir, p))
	return err == nil
}

// ReadConfigFile returns the content of the config file p (relative to
// ConfigDir).
func (t Trees) ReadConfigFile(p string) ([]byte, error) {
	if t.Config == nil {
		return nil, fmt.Errorf("%s: no config tree", p)
	}
	f, err := t.Config.File(path.Join(t.ConfigDir, p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return blobBytes(&f.Blob)
}

// CourseFile reports whether p (relative to the course root) is a file of
// the course's tree; known is false when the tree is not available.
func (t Trees) CourseFile(course, p string) (exists, known bool) {
	if t.Course == nil {
		return false, false
	}
	tree, root, _, err := t.Course(course)
	if err != nil || tree == nil {
		return false, false
	}
	_, err = tree.File(path.Join(root, p))
	return err == nil, true
}

// Spec is everything one build of one image needs, taken from git objects.
type Spec struct {
	// Image is the image name I (the repository of its tags).
	Image string
	// Origin is where the Dockerfile lookup found it.
	Origin manifest.ImageSource
	// Source is the org.nbhosting.source label: repo@commit:path.
	Source string
	// Dockerfile is the Dockerfile's content and DockerfileName its path in
	// the build context; File is its path for lint messages.
	Dockerfile     []byte
	DockerfileName string
	File           string
	// BuildArgs are passed to the engine as --build-arg.
	BuildArgs map[string]string
	// Smoke is the image's smoke command; empty means the default check.
	Smoke []string
	// Pin, when set, is the build-key prefix of the build to serve.
	Pin string
	// Bases are the images of this site the Dockerfile builds FROM, in
	// order; Base is the one of its final stage ("" when that one is not
	// the site's). They are built first, and their keys are inputs of Key.
	Bases []string
	Base  string
	// ProvidesScript is true when the image carries the start script by
	// its Dockerfile: copied in, or inherited from a base that does.
	ProvidesScript bool
	// Key is the hex sha256 build key of every build input.
	Key string

	entries  []entry
	baseKeys []string // keys (and pins) of Bases, in order
	lintBase dockerfile.Bases
}

// entry is one file of the build context.
type entry struct {
	name string // slash path in the context
	mode filemode.FileMode
	hash plumbing.Hash // git blob hash (zero for data)
	blob *object.Blob  // content from git (nil for data)
	data []byte        // content not from a blob (start script)
}

// ShortKey is the key's tag: its first ShortKeyLen hex digits.
func (s *Spec) ShortKey() string { return s.Key[:ShortKeyLen] }

// Files returns the context's paths, sorted, for display and tests.
func (s *Spec) Files() []string {
	names := make([]string, len(s.entries))
	for i, e := range s.entries {
		names[i] = e.name
	}
	return names
}

// Lint lints the spec's Dockerfile knowing the site: a base this site
// builds provides the start script when its own Dockerfile does.
func (s *Spec) Lint() []manifest.Problem { return Lint(s.File, s.Dockerfile, s.lintBase) }

// ErrNotFetched is matched by the error of a spec whose course repo is not
// fetched yet: a pull, not a commit, fixes it.
var ErrNotFetched = errors.New("repo not fetched yet")

// ErrBaseFailed is matched by the error of a spec, or a build, held back
// because a site image it is built FROM cannot be built.
var ErrBaseFailed = errors.New("its base image cannot be built")

// NewSpec makes the build spec of image name; its bases' specs are made
// too, since their keys are inputs of its key.
func NewSpec(cfg *manifest.Config, name string, trees Trees) (*Spec, error) {
	specs, errs := NewSpecs(cfg, trees)
	if err := errs[name]; err != nil {
		return nil, err
	}
	for _, s := range specs {
		if s.Image == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no image %s in courses.yaml", name)
}

// NewSpecs makes the build spec of every image of cfg, in build order:
// each image after the site images it is built FROM. An image whose spec
// cannot be made — no Dockerfile, a FROM cycle, a base that cannot be
// built — is left out, its error (a *BuildError of StageContext) in errs.
func NewSpecs(cfg *manifest.Config, trees Trees) (specs []*Spec, errs map[string]error) {
	names := cfg.ImageNames()
	errs = map[string]error{}
	raw := map[string]*Spec{}
	bases := map[string][]string{}
	froms := map[string][]dockerfile.From{}
	for _, name := range names {
		s, err := newSpec(cfg, name, trees)
		if err != nil {
			errs[name] = contextError(name, err)
			continue
		}
		raw[name] = s
		for _, f := range dockerfile.Froms(s.Dockerfile) {
			b := dockerfile.LocalName(f.Ref)
			if !slices.Contains(names, b) {
				continue
			}
			froms[name] = append(froms[name], f)
			if !slices.Contains(s.Bases, b) {
				s.Bases = append(s.Bases, b)
			}
			if f.Final {
				s.Base = b
			}
		}
		bases[name] = s.Bases
	}
	order, cycles := manifest.OrderImages(names, bases)
	for _, cyc := range cycles {
		for i, name := range cyc[:len(cyc)-1] {
			line := 0
			for _, f := range froms[name] {
				if dockerfile.LocalName(f.Ref) == cyc[i+1] {
					line = f.Line
				}
			}
			errs[name] = contextError(name, fmt.Errorf("%s:%d: a cycle of base images: %s", raw[name].File, line, strings.Join(cyc, " → ")))
		}
	}
	done := map[string]*Spec{}
	for _, name := range order {
		s := raw[name]
		if s == nil {
			continue // its own error is in errs
		}
		var failed []string
		for _, b := range s.Bases {
			if done[b] == nil {
				failed = append(failed, b)
			}
		}
		if len(failed) > 0 {
			errs[name] = contextError(name, fmt.Errorf("%w: %s", ErrBaseFailed, strings.Join(failed, ", ")))
			continue
		}
		s.finish(done)
		done[name] = s
		specs = append(specs, s)
	}
	// Images built on a cycle were never ordered.
	for _, name := range names {
		if done[name] == nil && errs[name] == nil {
			errs[name] = contextError(name, fmt.Errorf("%w: %s is built on a cycle of base images", ErrBaseFailed, name))
		}
	}
	return specs, errs
}

// finish computes what depends on the bases (built already): the lint's
// knowledge of them, the start script's availability, the key.
func (s *Spec) finish(site map[string]*Spec) {
	s.lintBase = func(ref string) (dockerfile.Base, bool) {
		if b, ok := site[dockerfile.LocalName(ref)]; ok {
			if b.ProvidesScript {
				return dockerfile.BaseProvides, true
			}
			return dockerfile.BaseLacks, true
		}
		return dockerfile.BaseOf(ref)
	}
	s.ProvidesScript = dockerfile.InstallsStartScript(s.Dockerfile)
	if ref := dockerfile.FinalRef(s.Dockerfile); !s.ProvidesScript && ref != "" {
		script, _ := s.lintBase(ref)
		s.ProvidesScript = script == dockerfile.BaseProvides
	}
	for _, b := range s.Bases {
		s.baseKeys = append(s.baseKeys, b+"="+site[b].Key+"@"+site[b].Pin)
	}
	s.Key = s.key()
}

// contextError wraps err as the context-stage failure of image's build.
func contextError(image string, err error) error {
	var be *BuildError
	if errors.As(err, &be) {
		return be
	}
	return &BuildError{Image: image, Stage: StageContext, Err: err}
}

// newSpec resolves image name with cfg and collects its build inputs from
// trees: the Dockerfile and the rest of its folder (the context), the build
// args and the start script. The key is left for finish.
func newSpec(cfg *manifest.Config, name string, trees Trees) (*Spec, error) {
	origin, err := cfg.ResolveImage(name, trees)
	if err != nil {
		return nil, err
	}
	img := cfg.Images[name]
	s := &Spec{Image: name, Origin: origin, BuildArgs: img.BuildArgs, Smoke: img.Smoke, Pin: img.Pin}

	switch {
	case origin.Kind == manifest.FromCourse:
		tree, root, source, err := trees.Course(origin.Course)
		if err != nil {
			return nil, fmt.Errorf("course %s: %w", origin.Course, err)
		}
		if tree == nil || origin.Assumed {
			return nil, fmt.Errorf("course %s: %w", origin.Course, ErrNotFetched)
		}
		s.Source = source
		s.File = path.Join(root, origin.Dockerfile)
		if err := s.addContext(tree, path.Join(root, origin.Dir), path.Base(origin.Dockerfile)); err != nil {
			return nil, err
		}
	case origin.Dir != "":
		if err := s.addContext(trees.Config, path.Join(trees.ConfigDir, origin.Dir), path.Base(origin.Dockerfile)); err != nil {
			return nil, err
		}
		s.File = path.Join(trees.ConfigDir, origin.Dockerfile)
		s.Source = trees.ConfigSource + ":" + s.File
	default:
		// A Dockerfile beside courses.yaml: its folder is the whole config
		// repo, so the context is the Dockerfile alone.
		p := path.Join(trees.ConfigDir, origin.Dockerfile)
		f, err := trees.Config.File(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		content, err := blobBytes(&f.Blob)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		s.Source = trees.ConfigSource + ":" + p
		s.File = p
		s.Dockerfile = content
		s.DockerfileName = "Dockerfile"
		s.entries = append(s.entries, entry{name: "Dockerfile", mode: filemode.Regular, data: content})
	}

	script := StartScript
	if trees.Config != nil {
		p := path.Join(trees.ConfigDir, manifest.ConfigImagesDir, manifest.StartScript)
		if f, err := trees.Config.File(p); err == nil {
			if script, err = blobBytes(&f.Blob); err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
		}
	}
	// The site's start script wins over a file of the same name in the
	// folder: every image must carry the one the admins vouch for.
	s.entries = slices.DeleteFunc(s.entries, func(e entry) bool { return e.name == manifest.StartScript })
	s.entries = append(s.entries, entry{name: manifest.StartScript, mode: filemode.Executable, data: script})
	slices.SortFunc(s.entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return s, nil
}

// addContext adds the folder dir of tree as the build context, without
// the other Dockerfiles it may hold (images/ holds every admin image's:
// editing one must not rebuild the others), and reads the Dockerfile name
// from it.
func (s *Spec) addContext(tree *object.Tree, dir, name string) error {
	if err := s.addDir(tree, dir); err != nil {
		return err
	}
	s.entries = slices.DeleteFunc(s.entries, func(e entry) bool { return e.name != name && isDockerfile(e.name) })
	s.DockerfileName = name
	i := slices.IndexFunc(s.entries, func(e entry) bool { return e.name == name })
	if i < 0 || !s.entries[i].mode.IsRegular() {
		return fmt.Errorf("%s is not a regular file", path.Join(dir, name))
	}
	var err error
	if s.Dockerfile, err = blobBytes(s.entries[i].blob); err != nil {
		return fmt.Errorf("read %s: %w", path.Join(dir, name), err)
	}
	return nil
}

// isDockerfile reports whether a context path names a Dockerfile:
// Dockerfile, *.Dockerfile, *.dockerfile.
func isDockerfile(name string) bool {
	base := strings.ToLower(path.Base(name))
	return base == "dockerfile" || strings.HasSuffix(base, ".dockerfile")
}

// addDir adds every file under dir of tree, with paths relative to dir.
// Submodules have no content in the tree and are skipped.
func (s *Spec) addDir(tree *object.Tree, dir string) error {
	sub, err := tree.Tree(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	walker := object.NewTreeWalker(sub, true, nil)
	defer walker.Close()
	for {
		name, te, err := walker.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk %s: %w", dir, err)
		}
		switch te.Mode {
		case filemode.Regular, filemode.Deprecated, filemode.Executable, filemode.Symlink:
		default:
			continue // directories are implied, submodules have no content
		}
		f, err := sub.TreeEntryFile(&te)
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", dir, name, err)
		}
		mode := te.Mode
		if mode == filemode.Deprecated {
			mode = filemode.Regular
		}
		s.entries = append(s.entries, entry{name: name, mode: mode, hash: te.Hash, blob: &f.Blob})
	}
}

// key digests every build input: the format version, the Dockerfile's name,
// the keys of the site images it is built FROM,
// every context entry (path, mode, content hash; the Dockerfile and start
// script are entries) and the sorted build args. The commit is not an
// input, so a commit that changes nothing here changes no key.
func (s *Spec) key() string {
	h := sha256.New()
	field := func(parts ...string) {
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s", len(p), p)
		}
		h.Write([]byte{'\n'})
	}
	field(keyFormat)
	field("dockerfile", s.DockerfileName)
	for _, b := range s.baseKeys {
		field("base", b)
	}
	for _, e := range s.entries {
		hash := e.hash.String()
		if e.blob == nil {
			hash = plumbing.ComputeHash(plumbing.BlobObject, e.data).String()
		}
		field("entry", e.name, e.mode.String(), hash)
	}
	keys := make([]string, 0, len(s.BuildArgs))
	for k := range s.BuildArgs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field("arg", k, s.BuildArgs[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// contextTime is the modification time of every context entry: fixed, so
// the same inputs make the same tar (and the engine's cache can match).
var contextTime = time.Unix(0, 0).UTC()

// WriteContext writes the build context as a tar stream to w. Contents come
// from git blobs and embedded data only; a symlink is written as a symlink
// entry whose target is the blob's text, never followed. When base is not
// nil, each FROM of the Dockerfile that names one of s.Bases names
// base(image) instead: the reference of the site's own build of it.
func (s *Spec) WriteContext(w io.Writer, base func(image string) string) error {
	entries := s.entries
	if base != nil && len(s.Bases) > 0 {
		df := dockerfile.RewriteFroms(s.Dockerfile, func(ref string) (string, bool) {
			if name := dockerfile.LocalName(ref); slices.Contains(s.Bases, name) {
				return base(name), true
			}
			return "", false
		})
		entries = slices.Clone(entries)
		for i, e := range entries {
			if e.name == s.DockerfileName {
				entries[i] = entry{name: e.name, mode: e.mode, data: df}
			}
		}
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, e := range entries {
		if err := writeParents(tw, dirs, e.name); err != nil {
			return err
		}
		hdr := &tar.Header{Name: e.name, ModTime: contextTime, Format: tar.FormatPAX}
		switch e.mode {
		case filemode.Symlink:
			target, err := blobBytes(e.blob)
			if err != nil {
				return fmt.Errorf("context %s: %w", e.name, err)
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, string(target), 0o777
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("context %s: %w", e.name, err)
			}
			continue
		case filemode.Executable:
			hdr.Mode = 0o755
		default:
			hdr.Mode = 0o644
		}
		hdr.Typeflag = tar.TypeReg
		if err := writeFile(tw, hdr, e); err != nil {
			return fmt.Errorf("context %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("context: %w", err)
	}
	return nil
}

func writeParents(tw *tar.Writer, dirs map[string]bool, name string) error {
	dir := path.Dir(name)
	if dir == "." || dirs[dir] {
		return nil
	}
	if err := writeParents(tw, dirs, dir); err != nil {
		return err
	}
	dirs[dir] = true
	hdr := &tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: contextTime, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("context %s: %w", dir, err)
	}
	return nil
}

func writeFile(tw *tar.Writer, hdr *tar.Header, e entry) error {
	if e.blob == nil {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	hdr.Size = e.blob.Size
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	r, err := e.blob.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(tw, r)
	return err
}

func blobBytes(b *object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
