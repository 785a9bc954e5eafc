package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/livelog"
)

// runningBuilds serves GET /api/builds/running: the builds running now.
func (s *Server) runningBuilds(w http.ResponseWriter, r *http.Request) {
	builds := s.cfg.Builds.Running()
	if builds == nil {
		builds = []livelog.Build{}
	}
	writeJSON(w, http.StatusOK, api.RunningBuilds{Builds: builds})
}

// buildLog serves GET /api/builds/log/IMAGE: the log of the image's latest
// build as plain text, streamed as it is written until the build ends.
func (s *Server) buildLog(w http.ResponseWriter, r *http.Request) {
	// The stream ends with the build, the client, or the server.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	rc := http.NewResponseController(w)
	started := false
	err := s.cfg.Builds.Follow(ctx, r.PathValue("image"), func(p []byte) error {
		if !started {
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			h.Set("X-Content-Type-Options", "nosniff")
			started = true
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	})
	if errors.Is(err, livelog.ErrNoLog) {
		writeError(w, http.StatusNotFound, "no build of "+r.PathValue("image")+" since the daemon started (the history has older builds: /api/history?kind=build&log=1)")
	}
}
