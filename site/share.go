package site

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/share"
	"github.com/nbhosting/nbh-sync/workspace"
)

// shareTimeout bounds one conversion: a notebook of a few megabytes
// converts in seconds.
const shareTimeout = 2 * time.Minute

// nbconvert is the conversion, run inside the student's container:
// `python3 -m nbconvert`, because the `jupyter` command is not in every
// image (Debian's jupyter_server ships none), while nbconvert's module is
// in every image that serves notebooks (Notebook 6 and jupyter_server 2
// images alike).
var nbconvert = []string{"python3", "-m", "nbconvert", "--to", "html", "--stdout", "--log-level=ERROR"}

// Shares is the store of the notebooks students shared.
func (s *Site) Shares() share.Store { return share.Store{Dir: rootdir.Shares(s.opts.Root)} }

// Share makes a read-only HTML snapshot of a notebook of the student's
// work folder and returns its token (share.Prefix + token is its address
// on the front door). nbconvert runs inside the student's own container,
// as the student's uid: the conversion reads what their notebook can read
// and nothing else, with the course image's own nbconvert. The server is
// started if it is not running.
func (s *Site) Share(ctx context.Context, course, student, p string) (string, int, error) {
	start := time.Now()
	token, size, err := s.share(ctx, course, student, p)
	if !errors.Is(err, workspace.ErrBadPath) {
		msg := fmt.Sprintf("%s: %d bytes, token %.6s…", p, size, token)
		if err != nil {
			msg = err.Error()
		}
		s.record(ctx, history.Record{Kind: history.KindWorkspace, Course: course, Student: student, Action: "share",
			Result: map[bool]string{true: "ok", false: "failed"}[err == nil], Message: msg, Duration: time.Since(start)})
	}
	return token, size, err
}

func (s *Site) share(ctx context.Context, course, student, p string) (string, int, error) {
	if p == "" || path.Clean(p) != p || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || !strings.HasSuffix(p, ".ipynb") {
		return "", 0, fmt.Errorf("share %q: want a notebook's path in the work folder (a/b.ipynb): %w", p, workspace.ErrBadPath)
	}
	cfg, err := s.Config(ctx)
	if err != nil {
		return "", 0, err
	}
	co, err := cfg.Course(course)
	if err != nil {
		return "", 0, err
	}
	if err := naming.CheckStudent(student); err != nil {
		return "", 0, err
	}
	dir := rootdir.StudentCourse(s.opts.Root, student, course)
	if err := regularFileIn(dir, p); err != nil {
		return "", 0, fmt.Errorf("share %s: %w", p, err)
	}
	sp, err := s.Spawn(ctx, course, student, "")
	if err != nil {
		return "", 0, err
	}
	target, ok := workMount(co, s.opts.Root, student, sp)
	if !ok {
		return "", 0, fmt.Errorf("share %s: the work folder %s is not mounted in the container", p, dir)
	}
	uid := sp.UID
	if uid == "" {
		if u, _ := ownerOf("", "", dir); u > 0 {
			uid = strconv.Itoa(u)
		}
	}
	if uid == "" || uid == "0" {
		// As root, the student's notebook and environment would convert
		// with root's rights in the container.
		return "", 0, fmt.Errorf("share %s: the student's uid is unknown: not converted as root", p)
	}
	ctx, cancel := context.WithTimeout(ctx, shareTimeout)
	defer cancel()
	ctrs, err := s.containersOf(cfg)
	if err != nil {
		return "", 0, err
	}
	html, err := ctrs.Exec(ctx, sp.ID, containers.Exec{Cmd: slices.Concat(nbconvert, []string{path.Join(target, p)}), User: uid,
		Env: []string{"HOME=/tmp"}, Dir: "/tmp"})
	if err != nil {
		return "", 0, fmt.Errorf("share %s: nbconvert: %w", p, err)
	}
	token, err := s.Shares().Put(html)
	return token, len(html), err
}

// regularFileIn checks that p is a regular file inside dir, reached
// without leaving it (no symlink out).
func regularFileIn(dir, p string) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Lstat(filepath.FromSlash(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no such notebook: %w", fs.ErrNotExist)
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("not a regular file: %w", workspace.ErrBadPath)
	}
	return nil
}

// workMount returns where the student's work folder is mounted in the
// container the course's settings make.
func workMount(co manifest.Course, root, student string, sp containers.Spawned) (string, bool) {
	want := filepath.Clean(rootdir.StudentCourse(root, student, co.Name))
	v := containers.Vars{Root: root, Course: co.Name, Student: student, UID: sp.UID, Port: sp.Port}
	for _, m := range co.Container.Mounts {
		parts := strings.Split(v.Expand(m), ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == want {
			return parts[1], true
		}
	}
	return "", false
}
