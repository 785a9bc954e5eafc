package gitwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/manifest"

	"github.com/nbhosting/nbh-sync/internal/githash"
)

// ReadTree hands out the work tree with the commit it is at, from this
// process's checkout or, in a new process, from the recorded status; a
// checkout waits until the reader is done, so a reader never sees half of
// one commit.
func TestReadTree(t *testing.T) {
	repo := testenv.NewRepo(t)
	first := repo.Commit(t, map[string]string{"nb.ipynb": "v1"}, "v1")
	cfg, _, err := manifest.Parse(manifest.FileName, fmt.Appendf(nil, "version: 1\ncourses:\n  c:\n    repo: %s\n", repo.URL()))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	m := NewMirrors(root, testLogger(t), Options{})
	s := NewSyncer(m, root, testLogger(t), 1)

	if err := s.ReadTree("c", func(string, plumbing.Hash) error { return nil }); !errors.Is(err, ErrTreeUnknown) {
		t.Fatalf("before any checkout: %v, want ErrTreeUnknown", err)
	}
	if _, err := s.Sync(t.Context(), cfg, ConfigLocation{}, githash.Hash{}); err != nil {
		t.Fatal(err)
	}
	read := func(s *Syncer) (string, string) {
		t.Helper()
		var commit, content string
		err := s.ReadTree("c", func(dir string, c plumbing.Hash) error {
			b, err := os.ReadFile(filepath.Join(dir, "nb.ipynb"))
			commit, content = c.String(), string(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return commit, content
	}
	if c, got := read(s); c != first || got != "v1" {
		t.Errorf("after the checkout: %s %q, want %s v1", c, got, first)
	}
	// Another process: the status says the commit.
	if c, got := read(NewSyncer(m, root, testLogger(t), 1)); c != first || got != "v1" {
		t.Errorf("from the status: %s %q, want %s v1", c, got, first)
	}

	// A reader holds the tree: the next checkout waits for it.
	second := repo.Commit(t, map[string]string{"nb.ipynb": "v2"}, "v2")
	inside, leave := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		_ = s.ReadTree("c", func(dir string, c plumbing.Hash) error {
			close(inside)
			<-leave
			b, _ := os.ReadFile(filepath.Join(dir, "nb.ipynb"))
			done <- c.String() + " " + string(b)
			return nil
		})
	}()
	<-inside
	synced := make(chan error)
	go func() {
		_, err := s.Sync(t.Context(), cfg, ConfigLocation{}, githash.Hash{})
		synced <- err
	}()
	select {
	case err := <-synced:
		t.Fatalf("the checkout did not wait for the reader (%v)", err)
	case <-time.After(300 * time.Millisecond): // the fetch is local: the checkout is waiting
	}
	close(leave)
	if got := <-done; got != first+" v1" {
		t.Errorf("the reader saw %q, want %s v1 throughout", got, first)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if c, got := read(s); c != second || got != "v2" {
		t.Errorf("after the second checkout: %s %q, want %s v2", c, got, second)
	}
}
