package site

import (
	"encoding/json"
	"fmt"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/images"
	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/rootdir"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// notebook is a notebook as Jupyter writes one (nbformat 4.5, cell ids),
// with one code cell per source, ids c1, c2…
func notebook(sources ...string) string {
	type cell struct {
		CellType       string         `json:"cell_type"`
		ExecutionCount *int           `json:"execution_count"`
		ID             string         `json:"id"`
		Metadata       map[string]any `json:"metadata"`
		Outputs        []any          `json:"outputs"`
		Source         []string       `json:"source"`
	}
	nb := map[string]any{"nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}}}
	var cells []cell
	for i, s := range sources {
		cells = append(cells, cell{CellType: "code", ID: fmt.Sprintf("c%d", i+1), Metadata: map[string]any{}, Outputs: []any{}, Source: []string{s}})
	}
	nb["cells"] = cells
	b, _ := json.MarshalIndent(nb, "", " ")
	return string(b) + "\n"
}

// cellsOf returns the sources of a notebook's cells, by id.
func cellsOf(t *testing.T, nb []byte) map[string]string {
	t.Helper()
	var doc struct {
		Cells []struct {
			ID     string `json:"id"`
			Source any    `json:"source"`
		} `json:"cells"`
	}
	if err := json.Unmarshal(nb, &doc); err != nil {
		t.Fatalf("not a notebook: %v\n%s", err, nb)
	}
	out := map[string]string{}
	for _, c := range doc.Cells {
		switch s := c.Source.(type) {
		case string:
			out[c.ID] = s
		case []any:
			var b strings.Builder
			for _, l := range s {
				b.WriteString(l.(string))
			}
			out[c.ID] = b.String()
		}
	}
	return out
}

func lessonCells(seven string) []string {
	src := []string{"print(1)", "print(2)", "print(3)", "print(4)", "print(5)", "print(6)", "print(7)", "print(8)"}
	if seven != "" {
		src[6] = seven
	}
	return src
}

// TestWorkspaceOnRealJupyter is a student's day on a real Jupyter server
// of each generation, through the site with every workspace default: the
// first visit shows the course's notebooks in the student's own editable
// copy (the server's contents API lists them); the student saves cell 3
// through the contents API; the instructor pushes a change to cell 7, a
// new notebook and a deleted one, and a change of their own to the cell
// the student changed in another notebook; a pass keeps the workspace as
// it is while the server is in use; once the student is idle, the pass
// that stops the server merges: the student's cell 3 and the instructor's
// cell 7, the new notebook, the deleted one gone, the student's own file
// untouched, both versions of the conflicting notebook. Then a reset, and
// a share made by nbconvert in the student's container.
func TestWorkspaceOnRealJupyter(t *testing.T) {
	t.Parallel()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	for _, gen := range []struct {
		name, image string
		container   string // courses.yaml's container: for the course, "" for none
	}{
		// Notebook 6.4 has no JupyterLab: the classic server, rooted at
		// the work folder as the default command roots jupyter lab.
		{name: "gen1", image: jupytertest.Image, container: `
    container:
      command: [start-in-dir-as-uid.sh, /home/jovyan, "{uid}", jupyter, notebook, --ip=0.0.0.0, --no-browser,
                "--NotebookApp.base_url=/{port}/", --NotebookApp.notebook_dir=/home/jovyan/work]`},
		// Every default: jupyter lab (the test image has the jupyter
		// command Debian leaves out, as the demo's core image adds it).
		{name: "gen2", image: jupytertest.Image2},
	} {
		t.Run(gen.name, func(t *testing.T) {
			t.Parallel()
			jupytertest.RequireImage(t, cli, gen.image)
			course := "nbhtest-ws" + gen.name + "-" + fjtest.Suffix()
			t.Cleanup(func() { testenv.RemoveImagesLabelled(cli, images.LabelImage, course) })
			fjtest.CleanupContainers(t, cli, course+naming.Sep)
			workspaceDay(t, course, gen.image, gen.container)
		})
	}
}

func workspaceDay(t *testing.T, course, image, container string) {
	ctx := t.Context()
	cfgDir, root := t.TempDir(), t.TempDir()
	for p, content := range map[string]string{
		"courses.yaml":                  fmt.Sprintf("version: 1\ndefaults:\n  idle: %s\ncourses:\n  %s:\n    repo: .\n    path: course\n    workspace-exclude: [solutions/]%s\n", testIdle, course, container),
		"course/.nbhosting/Dockerfile":  fmt.Sprintf("FROM %s\nCOPY start-in-dir-as-uid.sh %s\n", image, images.StartScriptPath),
		"course/lesson.ipynb":           notebook(lessonCells("")...),
		"course/quiz.ipynb":             notebook("answer = None"),
		"course/old.ipynb":              notebook("print('old')"),
		"course/solutions/lesson.ipynb": notebook("print('solution')"),
		"course/.gitignore":             "*.pyc\n",
	} {
		writeTestFile(t, filepath.Join(cfgDir, p), content)
	}
	testenv.Git(t, cfgDir, "init", "-q", "-b", "main")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "site")

	hist, err := history.Open(filepath.Join(t.TempDir(), "history.db"), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hist.Close() })
	s, err := New(Options{Config: cfgDir, Root: root, Log: slog.New(slog.NewTextHandler(t.Output(), nil)), History: hist})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatalf("sync: %v", err)
	}

	// The first visit: the course's notebooks in the student's folder,
	// which the server's file browser shows.
	sp, err := s.Spawn(ctx, course, "alice", "1234")
	if err != nil {
		t.Fatal(err)
	}
	jup, err := jupytertest.Dial(sp.URL, sp.Token)
	if err != nil {
		t.Fatal(err)
	}
	listing := func() []string {
		t.Helper()
		var dir struct {
			Content []struct {
				Name string `json:"name"`
			} `json:"content"`
		}
		if err := jup.Do(ctx, "GET", "api/contents/", nil, &dir); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range dir.Content {
			names = append(names, c.Name)
		}
		slices.Sort(names)
		return names
	}
	if got, want := listing(), []string{"lesson.ipynb", "old.ipynb", "quiz.ipynb"}; !slices.Equal(got, want) {
		t.Fatalf("the file browser shows %q, want the course's notebooks %q (no solutions/, no .nbhosting/)", got, want)
	}
	work := rootdir.StudentCourse(root, "alice", course)
	for _, p := range []string{"lesson.ipynb", "quiz.ipynb"} {
		st, err := os.Stat(filepath.Join(work, p))
		if err != nil || st.Sys().(*syscall.Stat_t).Uid != 1234 {
			t.Fatalf("%s: %v, owned by %d; want the student's (1234)", p, err, st.Sys().(*syscall.Stat_t).Uid)
		}
	}

	// The student edits cell 3 and the quiz's answer, and writes a file of
	// their own, all through the contents API (as the UI saves).
	edit := func(name, id, source string) {
		t.Helper()
		var m struct {
			Content map[string]any `json:"content"`
		}
		if err := jup.Do(ctx, "GET", "api/contents/"+name, nil, &m); err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Content["cells"].([]any) {
			if c := c.(map[string]any); c["id"] == id {
				c["source"] = source
			}
		}
		if err := jup.Do(ctx, "PUT", "api/contents/"+name, map[string]any{"type": "notebook", "format": "json", "content": m.Content}, nil); err != nil {
			t.Fatal(err)
		}
	}
	edit("lesson.ipynb", "c3", "print('my answer')")
	edit("quiz.ipynb", "c1", "answer = 42")
	if err := jup.Do(ctx, "PUT", "api/contents/mine.txt", map[string]any{"type": "file", "format": "text", "content": "my notes\n"}, nil); err != nil {
		t.Fatal(err)
	}

	// The instructor pushes: cell 7, a new notebook, one deleted, and the
	// quiz's answer their own way.
	writeTestFile(t, filepath.Join(cfgDir, "course/lesson.ipynb"), notebook(lessonCells("print('seven, corrected')")...))
	writeTestFile(t, filepath.Join(cfgDir, "course/new.ipynb"), notebook("print('new')"))
	writeTestFile(t, filepath.Join(cfgDir, "course/quiz.ipynb"), notebook("answer = 'see the lecture'"))
	testenv.Git(t, cfgDir, "rm", "-q", "course/old.ipynb")
	testenv.Git(t, cfgDir, "add", "-A")
	testenv.Git(t, cfgDir, "commit", "-qm", "week 2")
	if _, err := s.Pull(ctx); err != nil {
		t.Fatal(err)
	}

	// While the server is in use, nothing moves.
	plan, err := s.Plan(ctx, PassOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Workspaces) != 1 || plan.Workspaces[0].Action != "wait" || plan.Workspaces[0].To == "" {
		t.Fatalf("plan with the server in use: %+v, want alice's workspace to wait", plan.Workspaces)
	}
	settled(t, s, "alice")
	if got := readCells(t, filepath.Join(work, "lesson.ipynb"))["c7"]; got != "print(7)" {
		t.Fatalf("merged while the server was in use: cell 7 %q", got)
	}

	// Idle: the pass that stops the server merges.
	stopsWhenIdle(t, s, "alice")
	lesson := readCells(t, filepath.Join(work, "lesson.ipynb"))
	if lesson["c3"] != "print('my answer')" || lesson["c7"] != "print('seven, corrected')" || lesson["c8"] != "print(8)" {
		t.Errorf("merged lesson: %q; want the student's cell 3 and the instructor's cell 7", lesson)
	}
	if _, err := os.Stat(filepath.Join(work, "new.ipynb")); err != nil {
		t.Errorf("the new notebook: %v", err)
	}
	if _, err := os.Stat(filepath.Join(work, "old.ipynb")); !os.IsNotExist(err) {
		t.Errorf("the deleted notebook, untouched by the student: %v, want it gone", err)
	}
	if b, err := os.ReadFile(filepath.Join(work, "mine.txt")); err != nil || string(b) != "my notes\n" {
		t.Errorf("the student's own file: %q, %v", b, err)
	}
	quiz := readCells(t, filepath.Join(work, "quiz.ipynb"))
	beside, _ := filepath.Glob(filepath.Join(work, "quiz (course *).ipynb"))
	if quiz["c1"] != "answer = 42" || len(beside) != 1 || readCells(t, beside[0])["c1"] != "answer = 'see the lecture'" {
		t.Errorf("the conflict: quiz %q, beside %q; want the student's in place and the course's beside it", quiz, beside)
	}
	st, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := st.Courses[0].Workspaces; v.Count != 1 || v.Behind != 0 || v.Conflicts != 1 || v.LastMerge == nil || v.LastMerge.Student != "alice" {
		t.Errorf("status: %+v, want one workspace, merged, with conflicts", v)
	}
	plan, _ = s.Plan(ctx, PassOptions{})
	if w := plan.Workspaces; len(w) != 1 || w[0].Action != "none" || w[0].Last == nil || w[0].Last.Op != "merge" || w[0].Last.Result != "conflicts" {
		t.Errorf("plan after the merge: %+v", w)
	}

	// Back the next day: the server shows the merged copy.
	if sp, err = s.Spawn(ctx, course, "alice", "1234"); err != nil {
		t.Fatal(err)
	}
	if jup, err = jupytertest.Dial(sp.URL, sp.Token); err != nil {
		t.Fatal(err)
	}
	if got := listing(); !slices.Contains(got, "new.ipynb") || slices.Contains(got, "old.ipynb") || !slices.Contains(got, filepath.Base(beside[0])) {
		t.Errorf("the file browser after the merge: %q", got)
	}
	var m struct {
		Content json.RawMessage `json:"content"`
	}
	if err := jup.Do(ctx, "GET", "api/contents/lesson.ipynb", nil, &m); err != nil {
		t.Fatal(err)
	}
	if c := cellsOf(t, m.Content); c["c3"] != "print('my answer')" || c["c7"] != "print('seven, corrected')" {
		t.Errorf("the server's lesson: %q", c)
	}

	// A reset gives the course's version back, the student's beside it.
	rep, err := s.Reset(ctx, course, "alice", "lesson.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Conflicts) != 1 || readCells(t, filepath.Join(work, rep.Conflicts[0].Beside))["c3"] != "print('my answer')" ||
		readCells(t, filepath.Join(work, "lesson.ipynb"))["c3"] != "print(3)" {
		t.Errorf("reset: %+v", rep)
	}

	// A share: nbconvert's HTML, made in the student's container.
	token, size, err := s.Share(ctx, course, "alice", "quiz.ipynb")
	if err != nil {
		t.Fatal(err)
	}
	html, err := s.Shares().Read(token)
	if err != nil || size != len(html) || !strings.Contains(string(html), "<html") || !strings.Contains(string(html), "answer") || !strings.Contains(string(html), "42") {
		t.Errorf("share %s: %d bytes, %v; want nbconvert's HTML of the quiz", token, size, err)
	}
	if _, _, err := s.Share(ctx, course, "alice", "../quiz.ipynb"); err == nil {
		t.Error("share of a path outside the work folder: no error")
	}
}

func readCells(t *testing.T, p string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return cellsOf(t, b)
}
