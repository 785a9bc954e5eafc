package gitwatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// quickCommit commits in-process, much faster than the CLI, so that a
// burst of commits is closer together than the debounce. It returns the
// longest time between two commits (from the call to the first): on a
// loaded machine even in-process commits can be a debounce apart.
func quickCommit(t *testing.T, work string, n int) (gap time.Duration) {
	t.Helper()
	last := time.Now()
	repo, err := git.PlainOpen(work)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("f%d.txt", i)
		if err := os.WriteFile(filepath.Join(work, name), []byte(time.Now().String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
		sig := &object.Signature{Name: "t", Email: "t@example.org", When: time.Now()}
		if _, err := wt.Commit("c", &git.CommitOptions{Author: sig}); err != nil {
			t.Fatal(err)
		}
		gap, last = max(gap, time.Since(last)), time.Now()
	}
	return gap
}

func TestWatchHintsOnCommit(t *testing.T) {
	// Long enough that the 50 in-process commits of a burst below never
	// leave a gap this long between two of them, even on a loaded machine
	// with the race detector on (at 300 ms they sometimes did).
	const debounce = time.Second
	f := testenv.NewRepo(t)
	f.Commit(t, map[string]string{"a.txt": "one"}, "one")
	hints := make(chan string, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, []string{f.Work, f.Bare}, debounce, func(p string) { hints <- p })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	// The watcher starts asynchronously: commit until it answers.
	for try := 0; ; try++ {
		start := time.Now()
		quickCommit(t, f.Work, 1)
		select {
		case p := <-hints:
			if p != f.Work {
				t.Fatalf("hint for %s, want %s", p, f.Work)
			}
			t.Logf("hint %s after the commit (debounce %s)", time.Since(start), debounce)
		case <-time.After(3 * debounce):
			if try == 5 {
				t.Fatal("no hint after a commit")
			}
			continue
		}
		break
	}

	// A burst of 50 commits (as a rebase makes) is one hint.
	gap := quickCommit(t, f.Work, 50)
	select {
	case <-hints:
	case <-time.After(5 * debounce):
		t.Fatal("no hint after 50 commits")
	}
	// A split burst would hint again one debounce after its last commit.
	// Unless the machine was so loaded that the burst really had a pause
	// near the debounce (the watcher, as starved, may see it whole): then
	// two hints are right.
	select {
	case p := <-hints:
		if gap < debounce/2 {
			t.Fatalf("second hint for one burst (longest pause between its commits %s): %s", gap, p)
		}
		t.Logf("second hint for a burst that paused %s between two commits (debounce %s): not a split burst", gap, debounce)
	case <-time.After(2 * debounce):
	}

	// A push to the bare repo hints for the bare repo (and for the work
	// tree, whose remote-tracking ref moves).
	runGit(t, f.Work, "push", "-q", "origin", "HEAD")
	deadline := time.After(5 * debounce)
	for {
		select {
		case p := <-hints:
			if p == f.Bare {
				return
			}
		case <-deadline:
			t.Fatal("no hint after a push to the bare repo")
		}
	}
}
