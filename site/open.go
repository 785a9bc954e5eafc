package site

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/workspace"
)

// Notebooks make the notebook a deep link names ready in the student's
// work before the student's browser is sent to it. This is where the
// student's own copy of the course is made on demand: a workspace that
// copies a course notebook only when first opened (its lazy mode) does it
// in Prepare. Prepare runs after the server was spawned (the student's
// work directory exists) and must be idempotent: every launch calls it.
type Notebooks interface {
	Prepare(ctx context.Context, course, student, path string) error
}

// Open spawns the student's server, as Spawn does, and returns with it the
// path under its base URL that opens the notebook nb (relative to the
// server's root, see containers.CheckNotebookPath) in the course's ui:
// lab/tree/NB or notebooks/NB. A course whose ui is auto asks the running
// server whether it has JupyterLab. A bad path changes nothing: it is
// refused before the spawn.
func (s *Site) Open(ctx context.Context, course, student, uid, nb string) (containers.Spawned, string, error) {
	if err := containers.CheckNotebookPath(nb); err != nil {
		return containers.Spawned{}, "", err
	}
	cfg, err := s.Config(ctx)
	if err != nil {
		return containers.Spawned{}, "", err
	}
	sp, err := s.Spawn(ctx, course, student, uid)
	if err != nil {
		return sp, "", err
	}
	n := s.opts.Notebooks
	if n == nil {
		n = workspaceNotebooks{s}
	}
	if err := n.Prepare(ctx, course, student, nb); err != nil {
		return sp, "", fmt.Errorf("prepare %s for %s in %s: %w", nb, student, course, err)
	}
	ui := cfg.Courses[course].UI
	if ui != manifest.UILab && ui != manifest.UIClassic {
		if ui, err = serverUI(ctx, sp.URL, sp.Token); err != nil {
			return sp, "", fmt.Errorf("which notebook interface %s's server has: %w", student, err)
		}
	}
	return sp, containers.NotebookPath(ui, nb), nil
}

// serverUI asks a running server whether it serves JupyterLab (its /lab
// page answers) or only a classic notebook UI.
func serverUI(ctx context.Context, serverURL, token string) (manifest.UI, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, serverURL+"lab", nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "token "+token)
	}
	// The server is on this host (or the swarm's network): never through
	// an environment proxy, and no redirect followed to a login page.
	c := http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return manifest.UILab, nil
	case resp.StatusCode == http.StatusNotFound:
		return manifest.UIClassic, nil
	}
	return "", fmt.Errorf("GET %slab: %s", serverURL, resp.Status)
}

// workspaceNotebooks prepares a deep link in the student's workspace: the
// course's notebook is copied there when they have none yet (a lazy
// workspace's copy on demand, or a course notebook they deleted and are
// sent to again). A path that is not the course's, or a student with no
// workspace (workspace: none), is opened as it is.
type workspaceNotebooks struct{ s *Site }

func (w workspaceNotebooks) Prepare(ctx context.Context, course, student, path string) error {
	err := w.s.WorkspaceOpen(ctx, course, student, path)
	if errors.Is(err, workspace.ErrNotInCourse) || errors.Is(err, workspace.ErrNotInitialized) {
		return nil
	}
	return err
}
