package workspace

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// tenCells is a course notebook: cells c1…c10, sources "cell N".
func tenCells(ids bool, change map[int]string) []cell {
	var cs []cell
	for i := 1; i <= 10; i++ {
		c := cell{src: fmt.Sprintf("cell %d", i)}
		if ids {
			c.id = fmt.Sprintf("c%d", i)
		}
		if s, ok := change[i]; ok {
			c.src = s
		}
		cs = append(cs, c)
	}
	return cs
}

// TestNotebookScenario is the day the merge is for: the student answers in
// cell 3; the instructor fixes cell 7, adds a notebook and deletes one.
// Everything lands; then a true conflict on one cell yields both files.
func TestNotebookScenario(t *testing.T) {
	for _, ids := range []bool{true, false} {
		t.Run(fmt.Sprintf("ids=%v", ids), func(t *testing.T) {
			e := newEnv(t)
			c0 := map[string]string{
				"lesson.ipynb": nb(tenCells(ids, nil)...),
				"old.ipynb":    nb(cell{src: "old"}),
			}
			if _, err := e.ws.Init(t.Context(), e.push(c0), ModeCopy); err != nil {
				t.Fatal(err)
			}
			student := tenCells(ids, map[int]string{3: "answer = 42"})
			student[2].out = "42\n" // the student ran their answer
			edit(t, e.ws.Dir, map[string]string{"lesson.ipynb": nb(student...)})

			c1 := map[string]string{
				"lesson.ipynb": nb(tenCells(ids, map[int]string{7: "cell 7, fixed"})...),
				"new.ipynb":    nb(cell{src: "new"}),
			}
			rep, err := e.ws.Update(t.Context(), e.push(c1))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, rep.Merged, "lesson.ipynb")
			eq(t, rep.Added, "new.ipynb")
			eq(t, rep.Removed, "old.ipynb")
			if len(rep.Conflicts) != 0 {
				t.Errorf("conflicts %+v", rep.Conflicts)
			}
			got := readTree(t, e.ws.Dir)
			if !reflect.DeepEqual(keys(got), []string{"lesson.ipynb", "new.ipynb"}) {
				t.Fatalf("workspace %v", keys(got))
			}
			cs := cellsOf(t, got["lesson.ipynb"])
			want := sources(tenCells(ids, map[int]string{3: "answer = 42", 7: "cell 7, fixed"}))
			if !reflect.DeepEqual(sources(cs), want) {
				t.Errorf("merged sources %q, want %q", sources(cs), want)
			}
			if cs[2].out != "42\n" {
				t.Errorf("the student's output of cell 3 is %q", cs[2].out)
			}

			// True conflict: both change cell 3, and the course cell 5.
			c2 := map[string]string{
				"lesson.ipynb": nb(tenCells(ids, map[int]string{3: "answer = ? (hint: 6*7)", 5: "cell 5, fixed", 7: "cell 7, fixed"})...),
				"new.ipynb":    nb(cell{src: "new"}),
			}
			rep, err = e.ws.Update(t.Context(), e.push(c2))
			if err != nil {
				t.Fatal(err)
			}
			side := "lesson (course 2026-12-06).ipynb"
			if len(rep.Conflicts) != 1 || rep.Conflicts[0].Beside != side || len(rep.Conflicts[0].Cells) != 1 {
				t.Fatalf("conflicts %+v", rep.Conflicts)
			}
			label := "c3"
			if !ids {
				label = "cell 3"
			}
			eq(t, rep.Conflicts[0].Cells, label)
			got = readTree(t, e.ws.Dir)
			// In place: the student's cell 3, the course's fix of cell 5.
			want = sources(tenCells(ids, map[int]string{3: "answer = 42", 5: "cell 5, fixed", 7: "cell 7, fixed"}))
			if s := sources(cellsOf(t, got["lesson.ipynb"])); !reflect.DeepEqual(s, want) {
				t.Errorf("in place %q, want %q", s, want)
			}
			if got[side] != c2["lesson.ipynb"] {
				t.Errorf("beside is not the course's version:\n%s", got[side])
			}
			assertNoMarkers(t, e.ws.Dir)
		})
	}
}

func TestMergeNotebookCells(t *testing.T) {
	tests := []struct {
		name          string
		base, o, th   []cell
		want          []string // sources of the result
		wantConflicts []string
		wantSame      bool // the student's bytes back, untouched
	}{
		{
			name: "course changed nothing but outputs",
			base: []cell{{id: "a", src: "x"}}, o: []cell{{id: "a", src: "x2"}}, th: []cell{{id: "a", src: "x", out: "ran"}},
			want: []string{"x2"}, wantSame: true,
		},
		{
			name: "both add cells in different places",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}, {id: "c", src: "C"}},
			o:    []cell{{id: "a", src: "A"}, {id: "s1", src: "mine"}, {id: "b", src: "B"}, {id: "c", src: "C"}},
			th:   []cell{{id: "a", src: "A"}, {id: "b", src: "B"}, {id: "t1", src: "theirs"}, {id: "c", src: "C"}},
			want: []string{"A", "mine", "B", "theirs", "C"},
		},
		{
			name: "course deletes a cell the student edited: kept",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}},
			o:    []cell{{id: "a", src: "A"}, {id: "b", src: "B mine"}},
			th:   []cell{{id: "a", src: "A2"}},
			want: []string{"A2", "B mine"},
		},
		{
			name: "course deletes a cell the student did not touch: gone",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}},
			o:    []cell{{id: "a", src: "A mine"}, {id: "b", src: "B"}},
			th:   []cell{{id: "a", src: "A"}},
			want: []string{"A mine"},
		},
		{
			name: "student deleted a cell the course changed: back",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}, {id: "c", src: "C"}},
			o:    []cell{{id: "a", src: "A mine"}, {id: "c", src: "C"}},
			th:   []cell{{id: "a", src: "A"}, {id: "b", src: "B2"}, {id: "c", src: "C"}},
			want: []string{"A mine", "B2", "C"},
		},
		{
			name: "student deleted a cell the course did not change: stays deleted",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}},
			o:    []cell{{id: "a", src: "A"}},
			th:   []cell{{id: "a", src: "A2"}, {id: "b", src: "B"}},
			want: []string{"A2"},
		},
		{
			name: "same change on both sides: no conflict, the student's outputs",
			base: []cell{{id: "a", src: "A"}},
			o:    []cell{{id: "a", src: "A2", out: "mine"}},
			th:   []cell{{id: "a", src: "A2"}},
			want: []string{"A2"}, wantSame: true,
		},
		{
			name: "student reordered: their order wins",
			base: []cell{{id: "a", src: "A"}, {id: "b", src: "B"}},
			o:    []cell{{id: "b", src: "B"}, {id: "a", src: "A"}},
			th:   []cell{{id: "a", src: "A"}, {id: "b", src: "B2"}},
			want: []string{"B2", "A"},
		},
		{
			name: "no ids: a cell edited in place pairs by position",
			base: []cell{{src: "A"}, {src: "B"}, {src: "C"}},
			o:    []cell{{src: "A"}, {src: "B mine"}, {src: "C"}},
			th:   []cell{{src: "A"}, {src: "B"}, {src: "C2"}},
			want: []string{"A", "B mine", "C2"},
		},
		{
			name: "no ids: conflict on the same cell",
			base: []cell{{src: "A"}, {src: "B"}},
			o:    []cell{{src: "A"}, {src: "B mine"}},
			th:   []cell{{src: "A"}, {src: "B theirs"}},
			want: []string{"A", "B mine"}, wantConflicts: []string{"cell 2"}, wantSame: true,
		},
		{
			name: "no ids: student inserted a cell, course edited a later one",
			base: []cell{{src: "A"}, {src: "B"}},
			o:    []cell{{src: "A"}, {src: "new"}, {src: "B"}},
			th:   []cell{{src: "A"}, {src: "B2"}},
			want: []string{"A", "new", "B2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := nb(tt.o...)
			out, conflicts, err := mergeNotebooks([]byte(nb(tt.base...)), []byte(ours), []byte(nb(tt.th...)))
			if err != nil {
				t.Fatal(err)
			}
			if got := sources(cellsOf(t, string(out))); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sources %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(conflicts, tt.wantConflicts) {
				t.Errorf("conflicts %q, want %q", conflicts, tt.wantConflicts)
			}
			if same := string(out) == ours; same != tt.wantSame {
				t.Errorf("student's bytes back: %v, want %v", same, tt.wantSame)
			}
			// Merging again against the same base and course gives the
			// same bytes: a re-run after a crash converges.
			again, _, err := mergeNotebooks([]byte(nb(tt.base...)), out, []byte(nb(tt.th...)))
			if err != nil || string(again) != string(out) {
				t.Errorf("second merge differs (%v):\n%s\n---\n%s", err, again, out)
			}
		})
	}
}

func TestMergeNotebookMetadataAndFormat(t *testing.T) {
	base := nb(cell{id: "a", src: "A"})
	ours := nb(cell{id: "a", src: "A mine <b>&</b> é"})
	theirs := strings.Replace(nb(cell{id: "a", src: "A"}), `"name": "python3"`, `"name": "python3.13"`, 1)
	out, conflicts, err := mergeNotebooks([]byte(base), []byte(ours), []byte(theirs))
	if err != nil || len(conflicts) != 0 {
		t.Fatal(err, conflicts)
	}
	want := strings.Replace(ours, `"name": "python3"`, `"name": "python3.13"`, 1)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// ids on some cells only: every cell gets one, nbformat 4.5.
	mixed := nb(cell{src: "x"})
	out, _, err = mergeNotebooks([]byte(mixed), []byte(mixed), []byte(nb(cell{src: "x"}, cell{id: "n", src: "new"})))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cellsOf(t, string(out)) {
		if c.id == "" {
			t.Errorf("a cell without id in %s", out)
		}
	}
	if !strings.Contains(string(out), `"nbformat_minor": 5`) {
		t.Errorf("nbformat_minor not raised:\n%s", out)
	}
	// Not a notebook: an error the caller turns into a file conflict.
	if _, _, err := mergeNotebooks([]byte(base), []byte("{oops"), []byte(theirs)); err == nil {
		t.Error("a broken notebook merged")
	}
}

// TestBrokenNotebookConflict: a student's notebook that is not JSON is
// kept, the course's version put beside.
func TestBrokenNotebookConflict(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ws.Init(t.Context(), e.push(map[string]string{"n.ipynb": nb(cell{id: "a", src: "A"})}), ModeCopy); err != nil {
		t.Fatal(err)
	}
	edit(t, e.ws.Dir, map[string]string{"n.ipynb": "{half a notebook"})
	c1 := nb(cell{id: "a", src: "A2"})
	rep, err := e.ws.Update(t.Context(), e.push(map[string]string{"n.ipynb": c1}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"n.ipynb": "{half a notebook", "n (course 2026-12-06).ipynb": c1}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Errorf("workspace %q", got)
	}
	if len(rep.Conflicts) != 1 {
		t.Errorf("report %+v", rep)
	}
}
