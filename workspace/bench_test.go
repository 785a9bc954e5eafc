package workspace

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// benchCourse writes n notebooks of 20 cells (about 25 KB each).
func benchCourse(b *testing.B, dir string, n int) {
	b.Helper()
	files := map[string]string{}
	for i := range n {
		var cs []cell
		for c := range 20 {
			cs = append(cs, cell{id: fmt.Sprintf("c%d", c), src: fmt.Sprintf("# cell %d of %d\n", c, i) + strings.Repeat("x = compute(1, 2, 3)\n", 50)})
		}
		files[fmt.Sprintf("week%d/nb%03d.ipynb", i/20, i)] = nb(cs...)
	}
	writeTree(b, dir, files)
}

// BenchmarkInit is a first visit to a 200-notebook course (the snapshot
// taken before, as it is once per commit); cp-ns/op is `cp -a` of the same
// tree in the same loop, ratio the two's.
func BenchmarkInit(b *testing.B) {
	root := b.TempDir()
	course := filepath.Join(root, "course")
	benchCourse(b, course, 200)
	store := NewStore(filepath.Join(root, "store"))
	src := Source{Tree: course, Commit: "c1"}
	if _, err := store.Snapshot(b.Context(), src); err != nil {
		b.Fatal(err)
	}
	var initNS, cpNS int64
	b.ResetTimer()
	for i := range b.N {
		ws := &Workspace{Dir: filepath.Join(root, "ws", fmt.Sprint(i)), State: filepath.Join(root, "state", fmt.Sprint(i)), Store: store, UID: -1}
		b.StartTimer()
		t := nowNS()
		if _, err := ws.Init(b.Context(), src, ModeCopy); err != nil {
			b.Fatal(err)
		}
		initNS += nowNS() - t
		b.StopTimer()
		t = nowNS()
		if out, err := exec.Command("cp", "-a", course, filepath.Join(root, "cp"+fmt.Sprint(i))).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v %s", err, out)
		}
		cpNS += nowNS() - t
	}
	b.ReportMetric(float64(cpNS)/float64(b.N), "cp-ns/op")
	b.ReportMetric(float64(initNS)/float64(cpNS), "ratio")
}

// BenchmarkUpdate merges one workspace of a 50-notebook course after a
// push changing 5 notebooks, the student having changed another.
func BenchmarkUpdate(b *testing.B) {
	root := b.TempDir()
	course := filepath.Join(root, "course")
	benchCourse(b, course, 50)
	store := NewStore(filepath.Join(root, "store"))
	src0 := Source{Tree: course, Commit: "c0"}
	if _, err := store.Snapshot(b.Context(), src0); err != nil {
		b.Fatal(err)
	}
	course1 := filepath.Join(root, "course1")
	if out, err := exec.Command("cp", "-a", course, course1).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	for n := range 5 {
		p := filepath.Join(course1, fmt.Sprintf("week0/nb%03d.ipynb", n))
		data, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(data), "# cell 7 of", "# cell 7, fixed, of", 1)), 0o644)
	}
	src1 := Source{Tree: course1, Commit: "c1"}
	if _, err := store.Snapshot(b.Context(), src1); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		ws := &Workspace{Dir: filepath.Join(root, "ws", fmt.Sprint(i)), State: filepath.Join(root, "state", fmt.Sprint(i)), Store: store, UID: -1}
		if _, err := ws.Init(b.Context(), src0, ModeCopy); err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(ws.Dir, "week0/nb010.ipynb")
		data, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.Replace(string(data), "# cell 3 of", "# my answer; cell 3 of", 1)), 0o644)
		b.StartTimer()
		rep, err := ws.Update(b.Context(), src1)
		if err != nil || len(rep.Updated) != 5 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
}
