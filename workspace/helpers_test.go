package workspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// env is a site in miniature: a course tree, the course's store, and a
// workspace with its state, all in one temporary folder.
type env struct {
	t      *testing.T
	root   string
	course string
	store  *Store
	ws     *Workspace
	commit int
}

var testNow = time.Date(2026, 12, 6, 14, 3, 5, 0, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{t: t, root: root, course: filepath.Join(root, "courses", "c1"), store: NewStore(filepath.Join(root, "state", "workspaces", "c1"))}
	e.ws = e.student("s1")
	return e
}

// student is another workspace of the same course.
func (e *env) student(name string) *Workspace {
	return &Workspace{
		Dir:   filepath.Join(e.root, "students", name, "c1"),
		State: filepath.Join(e.root, "state", "workspaces", "c1", "students", name),
		Store: e.store,
		UID:   -1,
		Now:   func() time.Time { return testNow },
	}
}

// push makes the course tree exactly files (path → content) as a new
// commit, and returns its Source.
func (e *env) push(files map[string]string, exclude ...string) Source {
	e.t.Helper()
	if err := os.RemoveAll(e.course); err != nil {
		e.t.Fatal(err)
	}
	writeTree(e.t, e.course, files)
	e.commit++
	return Source{Tree: e.course, Commit: fmt.Sprintf("commit%d", e.commit), Exclude: exclude}
}

func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// readTree is every regular file under dir, by slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// edit applies a student's edits: path → new content, or del to delete.
const del = "\x00delete"

func edit(t *testing.T, dir string, edits map[string]string) {
	t.Helper()
	for p, c := range edits {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if c == del {
			if err := os.Remove(full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// cell is a notebook cell for tests: id, source, and outputs (text).
type cell struct {
	id, src, out string
	md           bool // markdown
}

// nb writes a notebook as Jupyter does (nbformat 4.5 when cells have ids).
func nb(cells ...cell) string {
	var cs []any
	ids := false
	for i, c := range cells {
		m := map[string]any{"metadata": map[string]any{}, "source": splitLines(c.src)}
		if c.id != "" {
			m["id"] = c.id
			ids = true
		}
		if c.md {
			m["cell_type"] = "markdown"
		} else {
			m["cell_type"] = "code"
			m["execution_count"] = nil
			m["outputs"] = []any{}
			if c.out != "" {
				m["execution_count"] = i + 1
				m["outputs"] = []any{map[string]any{"name": "stdout", "output_type": "stream", "text": splitLines(c.out)}}
			}
		}
		cs = append(cs, m)
	}
	minor := 4
	if ids {
		minor = 5
	}
	doc := map[string]any{
		"cells":          cs,
		"metadata":       map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}},
		"nbformat":       4,
		"nbformat_minor": minor,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	return buf.String()
}

func splitLines(s string) []any {
	out := []any{}
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// cellsOf reads a notebook's cells back: id, source and outputs.
func cellsOf(t *testing.T, data string) []cell {
	t.Helper()
	n, err := parseNotebook([]byte(data))
	if err != nil {
		t.Fatalf("not a notebook: %v\n%s", err, data)
	}
	var out []cell
	for _, c := range n.cells {
		x := cell{id: cellID(c), src: sourceText(c["source"]), md: c["cell_type"] == "markdown"}
		if outs, ok := c["outputs"].([]any); ok {
			for _, o := range outs {
				if m, ok := o.(map[string]any); ok {
					x.out += sourceText(m["text"])
				}
			}
		}
		out = append(out, x)
	}
	return out
}

func sources(cs []cell) []string {
	var s []string
	for _, c := range cs {
		s = append(s, c.src)
	}
	return s
}

func nowNS() int64 { return time.Now().UnixNano() }
