// Package server is the daemon's HTTP face: health and readiness probes,
// Prometheus metrics, a JSON API (status, history, plan, spawn, sync,
// confirm-prune), webhook endpoints, and a server-rendered dashboard.
//
// It talks to the rest of the daemon only through Backend and HookVerifier.
// Mutating API endpoints need the bearer token; webhooks carry their own
// signatures and are checked by the HookVerifier.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/history"
)

// Defaults of Config.
const (
	DefaultAddr        = "127.0.0.1:8765"
	DefaultMaxHookBody = 5 << 20
	DefaultMaxAPIBody  = 64 << 10
	DefaultRefresh     = 10 * time.Second
	DefaultAPITimeout  = 2 * time.Minute
)

// Config configures a Server.
type Config struct {
	// Addr is where ListenAndServe listens (localhost by default).
	Addr    string
	Backend Backend
	// Hooks verifies webhooks; nil disables /hooks/ (404).
	Hooks HookVerifier
	// Metrics serves /metrics (metrics.Metrics.Handler()); nil disables it.
	Metrics http.Handler
	// Token is the bearer token of mutating endpoints (see LoadToken);
	// empty refuses every mutating call.
	Token string
	// MaxHookBody bounds a webhook body (413 beyond).
	MaxHookBody int64
	// Refresh is the dashboard's self-refresh period.
	Refresh time.Duration
	// APITimeout bounds one API call to the backend (spawn waits for the
	// student's server, so it is generous).
	APITimeout time.Duration
	Logger     *slog.Logger
}

// Server is the HTTP server; build it with New.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// LoadToken reads a bearer token from path; surrounding whitespace is
// ignored and an empty token is an error.
func LoadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read API token: %s is empty", path)
	}
	return tok, nil
}

// New returns a Server for cfg; cfg.Backend is required.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("server: no backend")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxHookBody <= 0 {
		cfg.MaxHookBody = DefaultMaxHookBody
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.APITimeout <= 0 {
		cfg.APITimeout = DefaultAPITimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Metrics != nil {
		m.Handle("GET /metrics", s.cfg.Metrics)
	}
	m.HandleFunc("GET /api/status", s.status)
	m.HandleFunc("GET /api/history", s.history)
	m.HandleFunc("GET /api/plan", s.plan)
	m.HandleFunc("POST /api/spawn", s.auth(s.spawn))
	m.HandleFunc("POST /api/sync", s.auth(s.sync))
	m.HandleFunc("POST /api/confirm-prune", s.auth(s.confirmPrune))
	m.HandleFunc("POST /hooks/{provider}", s.hook)
	m.HandleFunc("GET /{$}", s.dashboard)
}

// Handler returns the server's handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.mux }

// ListenAndServe listens on Config.Addr and serves until ctx is cancelled,
// then shuts down gracefully (in-flight requests get 10s).
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.log.Info("http server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// auth guards a mutating endpoint with the bearer token.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		const prefix = "Bearer "
		h := r.Header.Get("Authorization")
		ok := s.cfg.Token != "" && len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) &&
			subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.Token)) == 1
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="nbh-sync"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, r)
	}
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Backend.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.APITimeout)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	st, err := s.cfg.Backend.Status(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, normalize(st))
}

// normalize turns nil lists into empty ones, so that scripts always get
// arrays.
func normalize(st Status) Status {
	if st.Courses == nil {
		st.Courses = []CourseView{}
	}
	if st.Images == nil {
		st.Images = []ImageView{}
	}
	if st.Builds == nil {
		st.Builds = []BuildView{}
	}
	if st.Actions == nil {
		st.Actions = []ActionView{}
	}
	if st.Errors == nil {
		st.Errors = []string{}
	}
	return st
}

// history serves GET /api/history?kind=build&kind=pull&course=x&image=y&
// limit=50&since=RFC3339-or-duration&log=1.
func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	q, err := parseHistoryQuery(r, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	recs, err := s.cfg.Backend.History(ctx, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recs == nil {
		recs = []history.Record{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs})
}

func parseHistoryQuery(r *http.Request, now time.Time) (history.Query, error) {
	v := r.URL.Query()
	var q history.Query
	for _, ks := range v["kind"] {
		for _, k := range strings.Split(ks, ",") {
			kind := history.Kind(strings.TrimSpace(k))
			if !kind.Valid() {
				return q, fmt.Errorf("kind %q: want one of %v", k, history.Kinds)
			}
			q.Kinds = append(q.Kinds, kind)
		}
	}
	q.Course, q.Image = v.Get("course"), v.Get("image")
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return q, fmt.Errorf("limit %q: want 1..10000", l)
		}
		q.Limit = n
	}
	if sv := v.Get("since"); sv != "" {
		if d, err := time.ParseDuration(sv); err == nil {
			q.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, sv); err == nil {
			q.Since = t
		} else {
			return q, fmt.Errorf("since %q: want a duration (24h) or an RFC 3339 time", sv)
		}
	}
	switch v.Get("log") {
	case "", "0", "false":
	case "1", "true":
		q.WithLog = true
	default:
		return q, fmt.Errorf("log %q: want true or false", v.Get("log"))
	}
	return q, nil
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	p, err := s.cfg.Backend.Plan(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) spawn(w http.ResponseWriter, r *http.Request) {
	var req SpawnRequest
	if !decode(w, r, &req) {
		return
	}
	if req.Course == "" || req.Student == "" {
		writeError(w, http.StatusBadRequest, "course and student are required")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Backend.Spawn(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	// The body is optional: POST /api/sync?course=x works too.
	if r.ContentLength != 0 {
		if !decode(w, r, &req) {
			return
		}
	}
	if c := r.URL.Query().Get("course"); c != "" {
		req.Course = c
	}
	if len(req.Repos) > 0 {
		writeError(w, http.StatusBadRequest, "repos are for webhooks; name a course")
		return
	}
	req.Source = "api"
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Backend.Sync(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, res)
}

func (s *Server) confirmPrune(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Revision string `json:"revision"`
	}
	if r.ContentLength != 0 {
		if !decode(w, r, &req) {
			return
		}
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if err := s.cfg.Backend.ConfirmPrune(ctx, req.Revision); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "confirmed"})
}

// hook serves POST /hooks/{provider}: bounded body, verification, then a
// sync of the repos the push names.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if s.cfg.Hooks == nil {
		writeError(w, http.StatusNotFound, "webhooks are not enabled")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxHookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	repos, err := s.cfg.Hooks.Verify(ctx, provider, r, body)
	if errors.Is(err, ErrUnknownProvider) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if errors.Is(err, ErrInvalid) {
		// Signed, hence from the forge, but unreadable: say so.
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		// The reason goes to the log, not to an unauthenticated caller.
		s.log.Warn("webhook refused", "provider", provider, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusUnauthorized, "webhook verification failed")
		return
	}
	if len(repos) == 0 {
		writeJSON(w, http.StatusAccepted, SyncResult{Courses: []string{}})
		return
	}
	res, err := s.cfg.Backend.Sync(ctx, SyncRequest{Repos: repos, Source: "hook:" + provider})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Courses == nil {
		res.Courses = []string{}
	}
	s.log.Info("webhook accepted", "provider", provider, "repos", repos, "courses", res.Courses)
	writeJSON(w, http.StatusAccepted, res)
}

// fail answers a backend error with the status its kind asks for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrNotReady):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	if code >= 500 {
		s.log.Error("api call failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeError(w, code, err.Error())
}

// decode reads a bounded JSON body strictly; on failure it answers 400 (or
// 413) and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, DefaultMaxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
			return false
		}
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
