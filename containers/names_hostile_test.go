package containers_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/naming"
)

// hostileNames are built to escape paths or container names, or to be
// read as options.
var hostileNames = []string{
	"", ".", "..", "../x", "..x", "x/../..", "a/b", `a\b`, "/abs", "-rf", "--help", ".hidden",
	"UPPER", "Mixed", "a\x00b", "a\nb", "a b", "é", "a..b", "a:b", "a@b", "a$(id)", "a;b", "*",
	strings.Repeat("a", naming.MaxStudentLen+1),
}

// recorder is an Engine that records every call and makes none succeed.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

var _ containers.Engine = (*recorder)(nil)

func (r *recorder) rec(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

var errRecorder = errors.New("recorder: no engine")

func (r *recorder) List(context.Context) ([]containers.Raw, error) {
	r.rec("list")
	return nil, errRecorder
}
func (r *recorder) Images(context.Context, []string) (map[string]containers.Image, error) {
	r.rec("images")
	return map[string]containers.Image{}, nil
}
func (r *recorder) Inspect(_ context.Context, name string) (containers.Raw, error) {
	r.rec("inspect " + name)
	return containers.Raw{}, containers.ErrNotFound
}
func (r *recorder) Create(_ context.Context, s containers.Spec) (string, error) {
	r.rec("create " + s.Name)
	return "", errRecorder
}
func (r *recorder) Start(_ context.Context, id string) error {
	r.rec("start " + id)
	return errRecorder
}
func (r *recorder) Stop(_ context.Context, id string, _ time.Duration) error {
	r.rec("stop " + id)
	return errRecorder
}
func (r *recorder) Remove(_ context.Context, id string) error {
	r.rec("remove " + id)
	return errRecorder
}

// Hostile student names are refused by CheckStudent, and by Spawn before
// any engine call, lock or directory.
func TestHostileStudentNames(t *testing.T) {
	for _, name := range hostileNames {
		if err := naming.CheckStudent(name); !errors.Is(err, naming.ErrBadStudent) {
			t.Errorf("CheckStudent(%q) = %v, want ErrBadStudent", name, err)
		}
		root := t.TempDir()
		eng := &recorder{}
		m := containers.New(eng, nil, nil)
		co := manifest.Course{Name: "course", Container: manifest.Container{Mounts: manifest.DefaultMounts}}
		_, err := m.Spawn(t.Context(), co, name, containers.SpawnOptions{Root: root, UID: "1000"})
		if !errors.Is(err, naming.ErrBadStudent) {
			t.Errorf("Spawn(%q) = %v, want ErrBadStudent", name, err)
		}
		if len(eng.calls) > 0 {
			t.Errorf("Spawn(%q) called the engine: %q", name, eng.calls)
		}
		if ents, _ := os.ReadDir(root); len(ents) > 0 {
			t.Errorf("Spawn(%q) created %v under root", name, ents)
		}
	}
}

// A name with -x- is a fine student name: course names cannot hold -x-, so
// the container name splits back unambiguously.
func TestHostileSeparatorInStudent(t *testing.T) {
	for _, student := range []string{"x-x-y", "a-x-", "-x-b"[1:], "x-x-x-x"} {
		if naming.CheckStudent(student) != nil {
			continue
		}
		course, st, ok := naming.Split(naming.Container("c", student))
		if !ok || course != "c" || st != student {
			t.Errorf("naming.Split(naming.Container(c, %q)) = %q, %q, %v", student, course, st, ok)
		}
	}
	// Nor do container names that are not a course-x-student pair split.
	for _, name := range append(hostileNames, "c-x-../x", "c-x-a/b", "../c-x-s", "C-x-s", "c-x-S", "c-x-") {
		if c, s, ok := naming.Split(name); ok && (naming.CheckStudent(s) != nil || strings.ContainsAny(c+s, "/\\\x00")) {
			t.Errorf("naming.Split(%q) = %q, %q: accepted a bad part", name, c, s)
		}
	}
}

// Hostile course names never get past courses.yaml, and a spawn for one is
// an unknown course.
func TestHostileCourseNames(t *testing.T) {
	names := append(hostileNames, "x-x-y", "a-x-b", strings.Repeat("c", manifest.MaxNameLen+1))
	for _, name := range names {
		if name == "" {
			continue
		}
		yaml := "version: 1\ncourses:\n  " + quote(name) + ":\n    repo: https://example.org/c.git\n"
		_, _, err := manifest.Parse("courses.yaml", []byte(yaml))
		if err == nil {
			t.Errorf("course name %q accepted by manifest.Parse", name)
			continue
		}
		if !strings.Contains(err.Error(), "courses.yaml:") {
			t.Errorf("course name %q: error without a position: %v", name, err)
		}
	}
	cfg, _, err := manifest.Parse("courses.yaml", []byte("version: 1\ncourses:\n  ok:\n    repo: https://example.org/c.git\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := cfg.Course(name); !errors.Is(err, manifest.ErrUnknownCourse) {
			t.Errorf("cfg.Course(%q) = %v, want ErrUnknownCourse", name, err)
		}
	}
}

// quote writes name as a YAML double-quoted scalar, so that NUL and
// newlines reach the parser as themselves.
func quote(name string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range name {
		switch r {
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
