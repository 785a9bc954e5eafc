// Command workspace times the workspace package on the two paths a site
// takes, each beside its baseline in the same run (alternating round by
// round, so both see the same machine load):
//
//   - first visit: workspace.Workspace.Init of a course of N notebooks
//     (the course's Snapshot already taken, as it is once per commit for
//     all students) beside `cp -a` of the same tree;
//
//   - a push touching 5 notebooks: workspace.Workspace.Update of every
//     student's workspace beside `git pull` in a git clone per student.
//     Every student has changed one notebook the push does not touch (so
//     git's pull is a fast-forward with local changes, its cheapest case).
//
//     go run ./bench/workspace -notebooks 200 -rounds 5 -students 1000
//
// It prints a table and a RESULT line for bench/run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nbhosting/nbh-sync/workspace"
)

func main() {
	notebooks := flag.Int("notebooks", 200, "notebooks in the course of the first-visit bench")
	rounds := flag.Int("rounds", 5, "first-visit rounds (each: one Init, one cp -a)")
	students := flag.Int("students", 1000, "workspaces merged after a push")
	mergeNotebooks := flag.Int("merge-notebooks", 50, "notebooks in the course of the merge bench")
	push := flag.Int("push", 5, "notebooks the push changes")
	dir := flag.String("dir", "", "work folder (default: a temporary one, removed after)")
	flag.Parse()
	if err := run(context.Background(), *dir, *notebooks, *rounds, *students, *mergeNotebooks, *push); err != nil {
		fmt.Fprintln(os.Stderr, "bench/workspace:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, notebooks, rounds, students, mergeNB, push int) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "nbh-bench-workspace-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	os.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")

	// (a) first visit.
	course := filepath.Join(dir, "courses", "big")
	size, err := makeCourse(course, notebooks, 1)
	if err != nil {
		return err
	}
	store := workspace.NewStore(filepath.Join(dir, "state", "big"))
	src := workspace.Source{Tree: course, Commit: "c1"}
	t0 := time.Now()
	if _, err := store.Snapshot(ctx, src); err != nil {
		return err
	}
	snapT := time.Since(t0)
	var initT, cpT time.Duration
	for r := range rounds {
		ws := &workspace.Workspace{
			Dir:   filepath.Join(dir, "students", fmt.Sprintf("s%d", r), "big"),
			State: filepath.Join(dir, "state", "big", "students", fmt.Sprintf("s%d", r)),
			Store: store, UID: 1000, GID: 1000,
		}
		t := time.Now()
		if _, err := ws.Init(ctx, src, workspace.ModeCopy); err != nil {
			return err
		}
		initT += time.Since(t)
		dst := filepath.Join(dir, "cp", fmt.Sprintf("s%d", r))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		t = time.Now()
		if out, err := exec.Command("cp", "-a", course, dst).CombinedOutput(); err != nil {
			return fmt.Errorf("cp -a: %v: %s", err, out)
		}
		cpT += time.Since(t)
	}
	initAvg, cpAvg := initT/time.Duration(rounds), cpT/time.Duration(rounds)
	fmt.Printf("first visit: %d notebooks, %.1f MB; snapshot once per commit %v\n", notebooks, float64(size)/1e6, snapT.Round(time.Millisecond))
	fmt.Printf("  workspace Init   %10v /visit\n  cp -a            %10v /visit\n  ratio            %10.2f (goal <= 1.1)\n",
		initAvg.Round(10*time.Microsecond), cpAvg.Round(10*time.Microsecond), float64(initAvg)/float64(cpAvg))

	// (b) a push, merged into every workspace.
	mcourse := filepath.Join(dir, "courses", "m")
	if _, err := makeCourse(mcourse, mergeNB, 2); err != nil {
		return err
	}
	if err := git(mcourse, "init", "-q", "-b", "main"); err != nil {
		return err
	}
	if err := commitAll(mcourse, "c0"); err != nil {
		return err
	}
	mstore := workspace.NewStore(filepath.Join(dir, "state", "m"))
	msrc := workspace.Source{Tree: mcourse, Commit: "m0", Exclude: nil}
	wss := make([]*workspace.Workspace, students)
	clones := make([]string, students)
	t0 = time.Now()
	for i := range students {
		wss[i] = &workspace.Workspace{
			Dir:   filepath.Join(dir, "mstudents", fmt.Sprintf("s%d", i), "m"),
			State: filepath.Join(dir, "state", "m", "students", fmt.Sprintf("s%d", i)),
			Store: mstore, UID: 1000, GID: 1000,
		}
		if _, err := wss[i].Init(ctx, msrc, workspace.ModeCopy); err != nil {
			return err
		}
		clones[i] = filepath.Join(dir, "clones", fmt.Sprintf("s%d", i))
		if out, err := exec.Command("git", "clone", "-q", mcourse, clones[i]).CombinedOutput(); err != nil {
			return fmt.Errorf("git clone: %v: %s", err, out)
		}
		// The student's work: one notebook the push will not touch.
		nb := fmt.Sprintf("nb%03d.ipynb", mergeNB-1-i%(mergeNB-push))
		for _, d := range []string{wss[i].Dir, clones[i]} {
			if err := studentEdit(filepath.Join(d, nb), i); err != nil {
				return err
			}
		}
	}
	setup := time.Since(t0)
	// The push: cell 3 of notebooks 0..push-1.
	for n := range push {
		p := filepath.Join(mcourse, fmt.Sprintf("nb%03d.ipynb", n))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b = []byte(strings.Replace(string(b), "# cell 3 of", "# cell 3, fixed, of", 1))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	if err := commitAll(mcourse, "push"); err != nil {
		return err
	}
	msrc.Commit = "m1"
	t0 = time.Now()
	if _, err := mstore.Snapshot(ctx, msrc); err != nil {
		return err
	}
	msnap := time.Since(t0)

	// Alternate halves so both sides see the same load: even students
	// first with Update, then git; then odd ones.
	var upT, gitT time.Duration
	var upCPU, gitCPU time.Duration
	for half := range 2 {
		c0, k0 := cpu()
		t := time.Now()
		for i := half; i < students; i += 2 {
			rep, err := wss[i].Update(ctx, msrc)
			if err != nil {
				return err
			}
			if len(rep.Updated) != push {
				return fmt.Errorf("student %d: updated %v, want %d notebooks", i, rep.Updated, push)
			}
		}
		upT += time.Since(t)
		c1, k1 := cpu()
		upCPU += c1 - c0
		t = time.Now()
		for i := half; i < students; i += 2 {
			if out, err := exec.Command("git", "-C", clones[i], "pull", "-q", "--ff-only").CombinedOutput(); err != nil {
				return fmt.Errorf("git pull: %v: %s", err, out)
			}
		}
		gitT += time.Since(t)
		_, k2 := cpu()
		gitCPU += k2 - k1
		_ = k0
	}
	fmt.Printf("merge after a push of %d notebooks: %d workspaces of %d notebooks (setup %v, snapshot %v)\n",
		push, students, mergeNB, setup.Round(time.Millisecond), msnap.Round(time.Millisecond))
	fmt.Printf("  workspace Update %10v total %10v /workspace  CPU %v\n", upT.Round(time.Millisecond), (upT / time.Duration(students)).Round(time.Microsecond), upCPU.Round(time.Millisecond))
	fmt.Printf("  git pull         %10v total %10v /workspace  CPU %v (children)\n", gitT.Round(time.Millisecond), (gitT / time.Duration(students)).Round(time.Microsecond), gitCPU.Round(time.Millisecond))
	fmt.Printf("  ratio            %10.3f wall (goal <= 0.5), %.3f CPU\n", float64(upT)/float64(gitT), float64(upCPU)/float64(gitCPU))
	fmt.Printf("RESULT workspace init=%v cp=%v init_ratio=%.2f update=%v git=%v update_ratio=%.3f\n",
		initAvg.Round(10*time.Microsecond), cpAvg.Round(10*time.Microsecond), float64(initAvg)/float64(cpAvg),
		upT.Round(time.Millisecond), gitT.Round(time.Millisecond), float64(upT)/float64(gitT))
	return nil
}

// cpu is this process's CPU time and its waited-for children's.
func cpu() (self, children time.Duration) {
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(r syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return tv(s), tv(c)
}

// makeCourse writes n notebooks of 20 cells (some with outputs) and a few
// data files; it returns the bytes written.
func makeCourse(dir string, n int, seed uint64) (int, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	total := 0
	for i := range n {
		sub := ""
		if i%20 >= 10 {
			sub = fmt.Sprintf("week%d", i/20)
		}
		p := filepath.Join(dir, sub, fmt.Sprintf("nb%03d.ipynb", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		var cells []string
		for c := range 20 {
			var lines []string
			lines = append(lines, fmt.Sprintf(`    "# cell %d of notebook %d\n"`, c, i))
			for l := range 10 + r.IntN(30) {
				lines = append(lines, fmt.Sprintf(`    "x_%d = compute(%d, %q)\n"`, l, r.IntN(1000), strings.Repeat("ab", r.IntN(10))))
			}
			out := "[]"
			if c%3 == 0 {
				out = fmt.Sprintf(`[{"name": "stdout", "output_type": "stream", "text": ["%s\n"]}]`, strings.Repeat("result ", 20+r.IntN(40)))
			}
			cells = append(cells, fmt.Sprintf(`  {
   "cell_type": "code",
   "execution_count": null,
   "id": "c%d-%d",
   "metadata": {},
   "outputs": %s,
   "source": [
%s
   ]
  }`, i, c, out, strings.Join(lines, ",\n")))
		}
		doc := fmt.Sprintf("{\n \"cells\": [\n%s\n ],\n \"metadata\": {},\n \"nbformat\": 4,\n \"nbformat_minor\": 5\n}\n", strings.Join(cells, ",\n"))
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			return 0, err
		}
		total += len(doc)
	}
	for i := range 5 {
		p := filepath.Join(dir, "data", fmt.Sprintf("d%d.csv", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		b := []byte(strings.Repeat("1,2,3,4\n", 2000))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return 0, err
		}
		total += len(b)
	}
	return total, nil
}

// studentEdit changes a notebook as a student answering does.
func studentEdit(p string, i int) error {
	b, err := os.ReadFile(p)
	if err != nil {
		// Notebooks of the merge course sit at the top only when n < 10
		// per twenty; find it under a week folder otherwise.
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*", filepath.Base(p)))
		if len(m) == 0 {
			return err
		}
		p = m[0]
		if b, err = os.ReadFile(p); err != nil {
			return err
		}
	}
	b = []byte(strings.Replace(string(b), "# cell 5 of", fmt.Sprintf("# my answer %d; cell 5 of", i), 1))
	return os.WriteFile(p, b, 0o644)
}

func git(dir string, args ...string) error {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func commitAll(dir, msg string) error {
	if err := git(dir, "add", "-A"); err != nil {
		return err
	}
	return git(dir, "-c", "user.name=bench", "-c", "user.email=bench@example.org", "commit", "-q", "-m", msg)
}
