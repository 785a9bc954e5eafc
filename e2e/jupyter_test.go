//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/internal/jupytertest"
)

// dialStudent is a student's browser talking to their spawned Jupyter
// server, through its REST API and kernel websockets.
func dialStudent(t *testing.T, url, token string) *jupytertest.Server {
	t.Helper()
	s, err := jupytertest.Dial(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// putFile saves a text file through the contents API, as the editor does.
func putFile(ctx context.Context, s *jupytertest.Server, path, text string) error {
	return s.Do(ctx, http.MethodPut, "api/contents/"+path, map[string]string{"type": "file", "format": "text", "content": text}, nil)
}

// getFile reads a text file through the contents API.
func getFile(ctx context.Context, s *jupytertest.Server, path string) (string, error) {
	var f struct {
		Content string `json:"content"`
	}
	err := s.Do(ctx, http.MethodGet, "api/contents/"+path+"?type=file&format=text", nil, &f)
	return f.Content, err
}

// settledKernel opens a notebook: a kernel whose first cell ran, listed
// idle. A real student's first cell comes seconds after the kernel starts,
// by when the server has caught up with it (see internal/jupytertest).
// The wait is long: on a starved machine four fresh kernels at once took
// over 30 s to run their first cell.
func settledKernel(ctx context.Context, s *jupytertest.Server) (string, error) {
	k, err := s.SettledKernel(ctx, 2*time.Minute)
	return k.ID, err
}

// startBusy starts a long computation in kernel id and waits until the
// server lists the kernel busy.
func startBusy(ctx context.Context, s *jupytertest.Server, id string) error {
	if err := s.StartExecution(ctx, id, "import time; time.sleep(3600)"); err != nil {
		return err
	}
	_, err := s.WaitKernelState(ctx, id, "busy", 10*time.Second)
	return err
}

// kernelState is the state the server lists kernel id in, read without
// counting as activity.
func kernelState(ctx context.Context, s *jupytertest.Server, id string) (string, error) {
	ks, err := s.KernelsUntracked(ctx)
	for _, k := range ks {
		if k.ID == id {
			return k.ExecutionState, nil
		}
	}
	return "", err
}
