package images_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/manifest"
)

var hostileGitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
	"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
}

func hostileGit(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), hostileGitEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Odd but legal file names: they must reach the context byte for byte.
// Names with control characters are in controlNames: go-git refuses to walk
// them, and NewSpec must fail clearly.
var oddNames = []string{
	"with space.txt", "ünïcødé-文件.txt", "-rf", "--help",
	`back\slash`, "quote\"s'", "sub dir/-n", "sub dir/日本/ファイル", strings.Repeat("l", 200),
}

const bigSize = 50 << 20

// hostileCourse commits, with the git CLI, a course whose docker-image/
// holds symlinks out of the repo (relative and absolute), a 50 MB file and
// odd names (extra ones instead of the big file when given); packed says whether the objects end up in a pack (as after a
// fetch) rather than loose. It returns the commit's tree.
var controlNames = []string{"new\nline.txt", "tab\tname"}

func hostileCourse(t *testing.T, packed bool, threshold int64, extra ...string) *object.Tree {
	t.Helper()
	work := t.TempDir()
	hostileGit(t, work, "init", "-q", "-b", "main")
	di := filepath.Join(work, manifest.CourseImageDir)
	write := func(name, data string) {
		p := filepath.Join(di, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("nbhosting.Dockerfile", "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nCOPY . /ctx/\n")
	for _, n := range append(oddNames, extra...) {
		write(n, "content of "+n)
	}
	for name, target := range map[string]string{
		"passwd": "../../etc/passwd", "shadow": "/etc/shadow", "hosts-dir": "/etc", "up": "..",
	} {
		if err := os.Symlink(target, filepath.Join(di, name)); err != nil {
			t.Fatal(err)
		}
	}
	if len(extra) == 0 {
		f, err := os.Create(filepath.Join(di, "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		// Mostly zeros (compressible, so the repo stays small) with a
		// marker at the end, so that a truncated copy is seen.
		if _, err := f.WriteAt([]byte("END-OF-BIG"), bigSize-10); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	hostileGit(t, work, "add", "-A")
	hostileGit(t, work, "commit", "-q", "-m", "hostile")
	if packed {
		hostileGit(t, work, "gc", "-q")
	}
	var repo *git.Repository
	var err error
	if threshold > 0 {
		st := filesystem.NewStorageWithOptions(osfs.New(filepath.Join(work, ".git")), cache.NewObjectLRUDefault(),
			filesystem.Options{LargeObjectThreshold: threshold})
		repo, err = git.Open(st, nil)
	} else {
		repo, err = git.PlainOpen(work)
	}
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := c.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// The context of a hostile course holds only the repo's own content:
// symlinks stay symlinks with their text as target (never followed, so
// nothing of /etc enters), odd names arrive unchanged, and the 50 MB file is
// streamed whole.
func TestHostileCourseContext(t *testing.T) {
	// Not parallel: it measures the process's allocations (TotalAlloc)
	// while the context streams, which other tests running at once add
	// to (CI: 25 MB counted for a 50 MB file, at the limit).
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("fixtures need the git CLI")
	}
	hostPasswd, _ := os.ReadFile("/etc/passwd")
	cfg, _, err := manifest.Parse("courses.yaml", []byte("version: 1\ncourses:\n  hostile:\n    repo: file:///nowhere.git\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range controlNames {
		t.Run("control character", func(t *testing.T) {
			tree := hostileCourse(t, false, 0, n)
			_, err := images.NewSpec(cfg, "hostile", images.Trees{Course: func(string) (*object.Tree, string, string, error) {
				return tree, "", "file:///nowhere.git@0000000:", nil
			}})
			if err == nil || !strings.Contains(err.Error(), "control character") {
				t.Errorf("NewSpec with %q in docker-image/: %v, want a clear error", n, err)
			}
		})
	}
	for _, tc := range []struct {
		name      string
		packed    bool
		threshold int64
	}{{"loose", false, 0}, {"packed", true, 0}, {"packed, LargeObjectThreshold 1MB", true, 1 << 20}} {
		name, packed := tc.name, tc.packed
		t.Run(name, func(t *testing.T) {
			tree := hostileCourse(t, packed, tc.threshold)
			trees := images.Trees{Course: func(string) (*object.Tree, string, string, error) {
				return tree, "", "file:///nowhere.git@0000000:", nil
			}}
			spec, err := images.NewSpec(cfg, "hostile", trees)
			if err != nil {
				t.Fatalf("NewSpec: %v", err)
			}
			files := map[string]bool{}
			for _, f := range spec.Files() {
				files[f] = true
			}
			for _, n := range append(oddNames, "passwd", "shadow", "hosts-dir", "up", "big.bin", "nbhosting.Dockerfile", "start-in-dir-as-uid.sh") {
				if !files[n] {
					t.Errorf("context lacks %q (has %q)", n, spec.Files())
				}
			}

			// Stream the context through a tar reader, measuring what
			// WriteContext allocates meanwhile.
			pr, pw := io.Pipe()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			done := make(chan error, 1)
			go func() {
				err := spec.WriteContext(pw, nil)
				pw.CloseWithError(err)
				done <- err
			}()
			tr := tar.NewReader(pr)
			seen := map[string]*tar.Header{}
			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("read context: %v", err)
				}
				seen[hdr.Name] = hdr
				if strings.HasPrefix(hdr.Name, "/") || strings.Contains("/"+hdr.Name+"/", "/../") {
					t.Errorf("context entry %q leaves the context", hdr.Name)
				}
				if hdr.Name == "big.bin" {
					n, err := io.Copy(io.Discard, tr)
					if err != nil || n != bigSize {
						t.Errorf("big.bin: %d bytes, %v; want %d", n, err, bigSize)
					}
					continue
				}
				data, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if len(hostPasswd) > 0 && bytes.Contains(data, hostPasswd[:min(len(hostPasswd), 32)]) {
					t.Errorf("context entry %q holds host content of /etc/passwd", hdr.Name)
				}
			}
			if err := <-done; err != nil {
				t.Fatalf("WriteContext: %v", err)
			}
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s objects: WriteContext of a context with a %d MB file allocated %d MB in total",
				name, bigSize>>20, alloc>>20)
			if (!packed || tc.threshold > 0) && alloc > bigSize/2 {
				// Loose objects are zlib streams: go-git reads them without
				// holding the whole blob.
				t.Errorf("%s: WriteContext allocated %d MB for a %d MB file: not streamed", name, alloc>>20, bigSize>>20)
			}
			for link, target := range map[string]string{"passwd": "../../etc/passwd", "shadow": "/etc/shadow", "hosts-dir": "/etc", "up": ".."} {
				h := seen[link]
				switch {
				case h == nil:
					t.Errorf("no %s entry", link)
				case h.Typeflag != tar.TypeSymlink || h.Linkname != target || h.Size != 0:
					t.Errorf("%s: type %c link %q size %d; want a symlink to %q", link, h.Typeflag, h.Linkname, h.Size, target)
				}
			}
			for _, n := range oddNames {
				if h := seen[n]; h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("odd name %q missing or not a regular file in the tar", n)
				}
			}
		})
	}
}
