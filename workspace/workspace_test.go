package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	reg := func(sha string) fileState { return fileState{kind: regular, sha: sha} }
	none := fileState{kind: absent}
	dir := fileState{kind: other}
	tests := []struct {
		name     string
		b, t     string
		o        fileState
		notebook bool
		want     verdict
	}{
		{"course unchanged, student changed", "B", "B", reg("S"), false, vSkip},
		{"course unchanged, student deleted", "B", "B", none, false, vSkip},
		{"student's own file, not in the course", "", "", reg("S"), false, vSkip},
		{"student already has the course's", "B", "T", reg("T"), false, vSettle},
		{"new in the course, student made the same", "", "T", reg("T"), false, vSettle},
		{"untouched, changed upstream", "B", "T", reg("B"), false, vUpdate},
		{"untouched notebook, changed upstream", "B", "T", reg("B"), true, vUpdate},
		{"new upstream", "", "T", none, false, vAdd},
		{"new upstream, student's file in the way", "", "T", reg("S"), false, vInTheWay},
		{"new upstream, student's folder in the way", "", "T", dir, false, vInTheWay},
		{"changed upstream, a folder where the file was", "B", "T", dir, false, vInTheWay},
		{"deleted upstream, untouched", "B", "", reg("B"), false, vRemove},
		{"deleted upstream, changed by the student", "B", "", reg("S"), false, vKeep},
		{"deleted upstream, deleted by the student", "B", "", none, false, vForget},
		{"deleted upstream, a folder there", "B", "", dir, false, vKeep},
		{"deleted by the student, changed upstream", "B", "T", none, false, vRestore},
		{"both changed, notebook", "B", "T", reg("S"), true, vMerge},
		{"both changed, other file", "B", "T", reg("S"), false, vConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.b, tt.t, tt.o, tt.notebook); got != tt.want {
				t.Errorf("decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInitCopy(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{
		"intro.ipynb":           nb(cell{id: "a", src: "print(1)"}),
		"data/x.csv":            "1,2\n",
		".gitignore":            "*.pyc\n",
		".github/workflows/ci":  "x",
		".nbhosting/Dockerfile": "FROM x",
		"solutions/one.ipynb":   "secret",
		"notes/draft.md":        "draft",
		"deep/a.pyc":            "bin",
	}, "solutions/", "*.pyc", "notes/draft.md")
	e.ws.UID, e.ws.GID = 4242, 4343
	rep, err := e.ws.Init(t.Context(), src, ModeCopy)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"data/x.csv", "intro.ipynb"}
	if got := keys(readTree(t, e.ws.Dir)); !reflect.DeepEqual(got, want) {
		t.Errorf("workspace = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(rep.Added, want) {
		t.Errorf("report added %v, want %v", rep.Added, want)
	}
	for _, p := range []string{".", "data", "data/x.csv", "intro.ipynb"} {
		fi, err := os.Lstat(filepath.Join(e.ws.Dir, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if os.Geteuid() == 0 && (st.Uid != 4242 || st.Gid != 4343) {
			t.Errorf("%s owned by %d:%d, want 4242:4343", p, st.Uid, st.Gid)
		}
	}
	if c, err := e.ws.Commit(); err != nil || c != src.Commit {
		t.Errorf("Commit = %q, %v; want %q", c, err, src.Commit)
	}
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); !errors.Is(err, ErrInitialized) {
		t.Errorf("second Init: %v, want ErrInitialized", err)
	}
	// A second student shares every blob: the store does not grow.
	before := countFiles(t, filepath.Join(e.store.Dir(), "blobs"))
	if _, err := e.student("s2").Init(t.Context(), src, ModeCopy); err != nil {
		t.Fatal(err)
	}
	if after := countFiles(t, filepath.Join(e.store.Dir(), "blobs")); after != before || after != 2 {
		t.Errorf("blobs: %d before the second student, %d after; want 2 and 2", before, after)
	}
	// Nothing of the state is in the student's folder.
	if _, err := os.Stat(filepath.Join(e.ws.Dir, "base.json")); err == nil {
		t.Error("base in the student's folder")
	}
}

func countFiles(t *testing.T, dir string) int {
	return len(readTree(t, dir))
}

func TestInitExistingFolder(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"a.py": "course a\n", "b.py": "course b\n", "sub/c.py": "course c\n"})
	edit(t, e.ws.Dir, map[string]string{"a.py": "course a\n", "b.py": "mine b\n", "sub": "a file of mine"})
	rep, err := e.ws.Init(t.Context(), src, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a.py":                         "course a\n",
		"b.py":                         "mine b\n",
		"b (course 2026-12-06).py":     "course b\n",
		"sub":                          "a file of mine",
		"sub (course 2026-12-06)/c.py": "course c\n",
	}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Errorf("workspace = %v, want %v", got, want)
	}
	if len(rep.Conflicts) != 2 || rep.Conflicts[0].Reason != ReasonInTheWay {
		t.Errorf("conflicts = %+v", rep.Conflicts)
	}
	// Nothing new upstream: nothing put beside again.
	rep, err = e.ws.Update(t.Context(), src)
	if err != nil || rep.Changed() {
		t.Errorf("Update at the same commit: %+v, %v", rep, err)
	}
}

func TestInitLazyAndOpen(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"w1/a.ipynb": nb(cell{id: "a", src: "x = 1"}), "w2/b.ipynb": nb(cell{id: "b", src: "y"})})
	if _, err := e.ws.Init(t.Context(), src, ModeLazy); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, e.ws.Dir); len(got) != 0 {
		t.Fatalf("lazy workspace has %v", keys(got))
	}
	rep, err := e.ws.Open(t.Context(), src, "w1/a.ipynb", false)
	if err != nil || !reflect.DeepEqual(rep.Added, []string{"w1/a.ipynb"}) {
		t.Fatalf("Open: %+v, %v", rep, err)
	}
	mine := nb(cell{id: "a", src: "x = 2  # mine"})
	edit(t, e.ws.Dir, map[string]string{"w1/a.ipynb": mine})
	// Opening again leaves the student's version alone.
	if _, err := e.ws.Open(t.Context(), src, "w1/a.ipynb", false); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, e.ws.Dir)["w1/a.ipynb"]; got != mine {
		t.Errorf("open without force changed the student's notebook")
	}
	// Force: a fresh copy, the student's kept beside.
	rep, err = e.ws.Open(t.Context(), src, "w1/a.ipynb", true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"w1/a.ipynb":                            nb(cell{id: "a", src: "x = 1"}),
		"w1/a (mine 2026-12-06 14-03-05).ipynb": mine,
	}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Errorf("after force: %v", keys(got))
	}
	if len(rep.Conflicts) != 1 || rep.Conflicts[0].Beside != "w1/a (mine 2026-12-06 14-03-05).ipynb" {
		t.Errorf("report %+v", rep.Conflicts)
	}
	// An Update of a lazy workspace merges the opened file only.
	src2 := e.push(map[string]string{"w1/a.ipynb": nb(cell{id: "a", src: "x = 10"}), "w2/b.ipynb": nb(cell{id: "b", src: "y2"}), "w3/c.ipynb": "new"})
	rep, err = e.ws.Update(t.Context(), src2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Updated, []string{"w1/a.ipynb"}) || len(rep.Added) != 0 {
		t.Errorf("lazy update: %+v", rep)
	}
	if _, err := e.ws.Open(t.Context(), src2, "nope.ipynb", false); !errors.Is(err, ErrNotInCourse) {
		t.Errorf("open of a missing file: %v", err)
	}
	if _, err := e.ws.Open(t.Context(), src2, "../x", false); !errors.Is(err, ErrBadPath) {
		t.Errorf("open of ../x: %v", err)
	}
}

func TestInitNone(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"a.py": "a"})
	if _, err := e.ws.Init(t.Context(), src, ModeNone); err != nil {
		t.Fatal(err)
	}
	src2 := e.push(map[string]string{"a.py": "b"})
	rep, err := e.ws.Update(t.Context(), src2)
	if err != nil || rep.Changed() {
		t.Errorf("update of none: %+v %v", rep, err)
	}
	if behind, err := e.ws.Behind(src2.Commit); err != nil || behind {
		t.Errorf("Behind = %v, %v", behind, err)
	}
	if len(readTree(t, e.ws.Dir)) != 0 {
		t.Error("files in a none workspace")
	}
	if _, err := e.ws.Init(t.Context(), src, "bogus"); !errors.Is(err, ErrBadMode) {
		t.Errorf("bogus mode: %v", err)
	}
}

// TestUpdateRules is the decision table of docs/workspaces.md, row by row,
// end to end: course at c0, student edits, course at c1, Update.
func TestUpdateRules(t *testing.T) {
	d := "2026-12-06"
	tests := []struct {
		name    string
		c0      map[string]string
		student map[string]string
		c1      map[string]string
		want    map[string]string // the whole workspace after
		check   func(t *testing.T, r *Report)
	}{
		{
			name: "untouched file changed upstream is updated",
			c0:   map[string]string{"a.py": "v0"}, c1: map[string]string{"a.py": "v1"},
			want:  map[string]string{"a.py": "v1"},
			check: func(t *testing.T, r *Report) { eq(t, r.Updated, "a.py") },
		},
		{
			name: "new upstream file is added",
			c0:   map[string]string{"a.py": "v0"}, c1: map[string]string{"a.py": "v0", "b/new.py": "n"},
			want:  map[string]string{"a.py": "v0", "b/new.py": "n"},
			check: func(t *testing.T, r *Report) { eq(t, r.Added, "b/new.py") },
		},
		{
			name: "deleted upstream and untouched is removed",
			c0:   map[string]string{"a.py": "v0", "old.py": "o"}, c1: map[string]string{"a.py": "v0"},
			want:  map[string]string{"a.py": "v0"},
			check: func(t *testing.T, r *Report) { eq(t, r.Removed, "old.py") },
		},
		{
			name: "deleted upstream but modified by the student is kept",
			c0:   map[string]string{"old.py": "o"}, student: map[string]string{"old.py": "mine"}, c1: map[string]string{},
			want:  map[string]string{"old.py": "mine"},
			check: func(t *testing.T, r *Report) { eq(t, r.Kept, "old.py") },
		},
		{
			name: "deleted by the student, unchanged upstream: stays deleted",
			c0:   map[string]string{"a.py": "v0", "b.py": "b"}, student: map[string]string{"a.py": del}, c1: map[string]string{"a.py": "v0", "b.py": "b1"},
			want: map[string]string{"b.py": "b1"},
		},
		{
			name: "deleted by the student, changed upstream: back",
			c0:   map[string]string{"a.py": "v0"}, student: map[string]string{"a.py": del}, c1: map[string]string{"a.py": "v1"},
			want:  map[string]string{"a.py": "v1"},
			check: func(t *testing.T, r *Report) { eq(t, r.Restored, "a.py") },
		},
		{
			name: "deleted on both sides: gone",
			c0:   map[string]string{"a.py": "v0"}, student: map[string]string{"a.py": del}, c1: map[string]string{},
			want: map[string]string{},
		},
		{
			name: "student's changes, course unchanged: untouched",
			c0:   map[string]string{"a.py": "v0", "b.py": "b"}, student: map[string]string{"a.py": "mine", "scratch.txt": "s"}, c1: map[string]string{"a.py": "v0", "b.py": "b1"},
			want: map[string]string{"a.py": "mine", "scratch.txt": "s", "b.py": "b1"},
		},
		{
			name: "both changed, not a notebook: the student's in place, the course's beside",
			c0:   map[string]string{"a.py": "v0"}, student: map[string]string{"a.py": "mine"}, c1: map[string]string{"a.py": "v1"},
			want: map[string]string{"a.py": "mine", "a (course " + d + ").py": "v1"},
			check: func(t *testing.T, r *Report) {
				if len(r.Conflicts) != 1 || r.Conflicts[0].Beside != "a (course "+d+").py" || r.Conflicts[0].Reason != ReasonBothChanged {
					t.Errorf("conflicts %+v", r.Conflicts)
				}
			},
		},
		{
			name: "both changed alike: settled, nothing beside",
			c0:   map[string]string{"a.py": "v0"}, student: map[string]string{"a.py": "v1"}, c1: map[string]string{"a.py": "v1"},
			want: map[string]string{"a.py": "v1"},
		},
		{
			name: "student's file in the way of a new course file",
			c0:   map[string]string{}, student: map[string]string{"ex.md": "my notes"}, c1: map[string]string{"ex.md": "course"},
			want: map[string]string{"ex.md": "my notes", "ex (course " + d + ").md": "course"},
			check: func(t *testing.T, r *Report) {
				if len(r.Conflicts) != 1 || r.Conflicts[0].Reason != ReasonInTheWay {
					t.Errorf("conflicts %+v", r.Conflicts)
				}
			},
		},
		{
			name: "beside name taken: numbered",
			c0:   map[string]string{"a.py": "v0"}, student: map[string]string{"a.py": "mine", "a (course " + d + ").py": "also mine"}, c1: map[string]string{"a.py": "v1"},
			want: map[string]string{"a.py": "mine", "a (course " + d + ").py": "also mine", "a (course " + d + " 2).py": "v1"},
		},
		{
			name: "dotfile without extension",
			c0:   map[string]string{".env": "v0"}, student: map[string]string{".env": "mine"}, c1: map[string]string{".env": "v1"},
			want: map[string]string{".env": "mine", ".env (course " + d + ")": "v1"},
		},
		{
			name: "student's file where the course now has a folder",
			c0:   map[string]string{}, student: map[string]string{"data": "my data"}, c1: map[string]string{"data/x.csv": "1"},
			want: map[string]string{"data": "my data", "data (course " + d + ")/x.csv": "1"},
		},
		{
			name:    "notebook only run by the student, changed upstream: merged, outputs kept",
			c0:      map[string]string{"n.ipynb": nb(cell{id: "1", src: "a"}, cell{id: "2", src: "b"})},
			student: map[string]string{"n.ipynb": nb(cell{id: "1", src: "a", out: "A!"}, cell{id: "2", src: "b", out: "B!"})},
			c1:      map[string]string{"n.ipynb": nb(cell{id: "1", src: "a"}, cell{id: "2", src: "b fixed"})},
			want:    map[string]string{"n.ipynb": nb(cell{id: "1", src: "a", out: "A!"}, cell{id: "2", src: "b fixed"})},
			check:   func(t *testing.T, r *Report) { eq(t, r.Merged, "n.ipynb") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.ws.Init(t.Context(), e.push(tt.c0), ModeCopy); err != nil {
				t.Fatal(err)
			}
			edit(t, e.ws.Dir, tt.student)
			src := e.push(tt.c1)
			r, err := e.ws.Update(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("workspace:\n got %q\nwant %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if c, _ := e.ws.Commit(); c != src.Commit {
				t.Errorf("commit %q, want %q", c, src.Commit)
			}
			// A second Update changes nothing: converged.
			r2, err := e.ws.Update(t.Context(), src)
			if err != nil || r2.Changed() || r2.Backup != "" {
				t.Errorf("second Update: %+v, %v", r2, err)
			}
			if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after a second Update: %q", got)
			}
			assertNoMarkers(t, e.ws.Dir)
		})
	}
}

func eq(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func assertNoMarkers(t *testing.T, dir string) {
	t.Helper()
	for p, c := range readTree(t, dir) {
		if strings.Contains(c, "<<<<<<<") || strings.Contains(c, ">>>>>>>") {
			t.Errorf("%s has conflict markers", p)
		}
	}
}

func TestBehind(t *testing.T) {
	e := newEnv(t)
	if _, err := e.ws.Behind("x"); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("Behind before Init: %v", err)
	}
	src := e.push(map[string]string{"a": "1"})
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); err != nil {
		t.Fatal(err)
	}
	if b, err := e.ws.Behind(src.Commit); err != nil || b {
		t.Errorf("Behind(current) = %v, %v", b, err)
	}
	if b, err := e.ws.Behind("other"); err != nil || !b {
		t.Errorf("Behind(other) = %v, %v", b, err)
	}
}

func TestLockBusy(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"a": "1"})
	unlock, err := e.ws.lock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); !errors.Is(err, ErrBusy) {
		t.Errorf("Init while locked: %v", err)
	}
	unlock()
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); err != nil {
		t.Errorf("Init after unlock: %v", err)
	}
}

func TestResetUndoPrune(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"a.py": "v0", "b.py": "b0"})
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); err != nil {
		t.Fatal(err)
	}
	edit(t, e.ws.Dir, map[string]string{"a.py": "mine"})
	rep, err := e.ws.Reset(t.Context(), src, "a.py")
	if err != nil {
		t.Fatal(err)
	}
	side := "a (mine 2026-12-06 14-03-05).py"
	want := map[string]string{"a.py": "v0", side: "mine", "b.py": "b0"}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reset %q", got)
	}
	if rep.Backup == "" || len(rep.Conflicts) != 1 || rep.Conflicts[0].Beside != side {
		t.Errorf("reset report %+v", rep)
	}
	// Undo the reset: the student's back in place, the copy beside gone.
	if _, err := e.ws.Undo(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"a.py": "mine", "b.py": "b0"}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after undo %q", got)
	}
	// Update, then undo it: b.py goes back to b0 and the base with it, so
	// the next Update does the same again.
	src1 := e.push(map[string]string{"a.py": "v0", "b.py": "b1", "c.py": "c"})
	if _, err := e.ws.Update(t.Context(), src1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ws.Undo(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, e.ws.Dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after undo of the update %q", got)
	}
	if b, _ := e.ws.Behind(src1.Commit); !b {
		t.Error("not behind after undo")
	}
	rep, err = e.ws.Update(t.Context(), src1)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, rep.Updated, "b.py")
	eq(t, rep.Added, "c.py")

	all, err := e.ws.Backups()
	if err != nil || len(all) != 5 {
		t.Fatalf("backups: %d, %v", len(all), err)
	}
	// Prune: all but the newest are older than a day.
	e.ws.Now = func() time.Time { return testNow.Add(48 * time.Hour) }
	n, err := e.ws.Prune(t.Context(), 24*time.Hour)
	if err != nil || n != 4 {
		t.Errorf("Prune = %d, %v; want 4", n, err)
	}
	if all, _ := e.ws.Backups(); len(all) != 1 {
		t.Errorf("%d backups left, want 1", len(all))
	}
	if _, err := e.ws.Undo(t.Context(), "nope"); !errors.Is(err, ErrNoBackup) {
		t.Errorf("undo nope: %v", err)
	}
}

// TestSymlinkEscape: a student's symlink never leads a write outside the
// workspace.
func TestSymlinkEscape(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"sub/a.py": "v0", "b.py": "b0"})
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(e.root, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(e.ws.Dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.ws.Dir, "sub")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.ws.Dir, "b.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "b.py"), filepath.Join(e.ws.Dir, "b.py")); err != nil {
		t.Fatal(err)
	}
	src1 := e.push(map[string]string{"sub/a.py": "v1", "b.py": "b1"})
	if _, err := e.ws.Update(t.Context(), src1); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, outside); len(got) != 0 {
		t.Errorf("written outside the workspace: %v", got)
	}
}

func TestStatus(t *testing.T) {
	e := newEnv(t)
	src := e.push(map[string]string{"a.py": "a", "b.py": "b", "c.py": "c", "d.py": "d"})
	if _, err := e.ws.Init(t.Context(), src, ModeCopy); err != nil {
		t.Fatal(err)
	}
	edit(t, e.ws.Dir, map[string]string{"a.py": "mine", "b.py": del, "new.py": "n"})
	st, err := e.ws.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Commit != src.Commit || st.Tracked != 4 {
		t.Errorf("status %+v", st)
	}
	eq(t, st.Modified, "a.py")
	eq(t, st.Deleted, "b.py")
}
