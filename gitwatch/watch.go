package gitwatch

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch watches the local repositories at paths (bare repos or work trees)
// and calls hint(path), with the path as given, when a ref or HEAD of one
// moves. Events are debounced per path: hint runs once debounce has passed
// with no further event, so a rebase of many commits is one hint. Only the
// git directory's HEAD, packed-refs and refs/ are watched, so editing files
// in a work tree is no hint: only a commit is. Watch returns when ctx ends
// (nil) or on a watcher failure. hint must not block for long.
func Watch(ctx context.Context, paths []string, debounce time.Duration, hint func(path string)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Close()

	// owner maps a watched folder to the path given for its repository.
	owner := map[string]string{}
	gitDirs := map[string]string{}
	add := func(dir, p string) error {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
		owner[dir] = p
		return nil
	}
	for _, p := range paths {
		gd, err := findGitDir(localPath(p))
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		gitDirs[gd] = p
		if err := add(gd, p); err != nil {
			return err
		}
		err = filepath.WalkDir(filepath.Join(gd, "refs"), func(d string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() {
				return err
			}
			return add(d, p)
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
	}

	var mu sync.Mutex
	timers := map[string]*time.Timer{}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, t := range timers {
			t.Stop()
		}
	}()
	poke := func(p string) {
		mu.Lock()
		defer mu.Unlock()
		if t, ok := timers[p]; ok {
			t.Reset(debounce)
			return
		}
		timers[p] = time.AfterFunc(debounce, func() {
			mu.Lock()
			delete(timers, p)
			mu.Unlock()
			if ctx.Err() == nil {
				hint(p)
			}
		})
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watch: %w", err)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			dir := filepath.Dir(ev.Name)
			p, ok := owner[dir]
			if !ok {
				continue
			}
			base := filepath.Base(ev.Name)
			if strings.HasSuffix(base, ".lock") {
				continue
			}
			if _, top := gitDirs[dir]; top && base != "HEAD" && base != "packed-refs" {
				continue
			}
			// A new folder under refs/ (a branch such as feature/x) is
			// watched from now on.
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					_ = add(ev.Name, p)
				}
			}
			poke(p)
		}
	}
}
