// Package server is the daemon's HTTP face: health and readiness probes,
// Prometheus metrics, a JSON API (status, history, plan, spawn, sync,
// confirm-prune), webhook endpoints, and a server-rendered dashboard.
//
// It talks to the rest of the daemon only through Backend and HookHandler.
// Mutating API endpoints need the bearer token; webhooks carry their own
// signatures and are checked by the HookHandler.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/livelog"
)

// Defaults of Config.
const (
	DefaultMaxHookBody = 5 << 20
	DefaultMaxAPIBody  = 64 << 10
	DefaultRefresh     = 10 * time.Second
	DefaultAPITimeout  = 2 * time.Minute
	// DefaultHookReads bounds the webhook bodies read at once: with the
	// body limit, it bounds the memory a flood of webhooks can take.
	DefaultHookReads = 4
	// DefaultHookReadsPerSource bounds those of one source, so that one
	// sender of slow bodies leaves the others room.
	DefaultHookReadsPerSource = 2
	// DefaultHookReadTimeout bounds the reading of a webhook body: a
	// forge sends its payload at once.
	DefaultHookReadTimeout = 10 * time.Second
	// DefaultBodyReadTimeout bounds the reading of one request body.
	DefaultBodyReadTimeout = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	Backend Backend
	// Hooks handles webhooks; nil disables /hooks/ (404).
	Hooks HookHandler
	// HookHeaders, when set, checks a webhook's headers (the provider's
	// signature header present and well-formed) before its body is read,
	// so that an unsigned request costs no body read. An error wrapping
	// ErrUnknownProvider is answered 404, any other 401.
	HookHeaders func(provider string, h http.Header) error
	// MaxHookReads bounds the webhook bodies read at once, in all and
	// from one source (the client's address: see hookSource); a webhook
	// beyond either is answered 503 at once (DefaultHookReads and
	// DefaultHookReadsPerSource if 0).
	MaxHookReads, MaxHookReadsPerSource int
	// HookReadTimeout bounds the reading of a webhook body
	// (DefaultHookReadTimeout, or BodyReadTimeout if shorter, if 0).
	HookReadTimeout time.Duration
	// AllowedHosts are the host names, or host:port addresses such as the
	// one listened on, whose host (besides localhost and IP addresses) the
	// unauthenticated GET endpoints answer to: a browser led to the daemon
	// by DNS rebinding sends another name and gets 403.
	AllowedHosts []string
	// BodyReadTimeout bounds the reading of one request body
	// (DefaultBodyReadTimeout if 0).
	BodyReadTimeout time.Duration
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
	// Builds, when set, are the logs of the builds running now: the
	// dashboard follows them and GET /api/builds/log/IMAGE streams one.
	Builds *livelog.Logs
	// Demo, when set, lets the dashboard open a demo student's notebook
	// with no token (POST /api/demo): for a site on loopback only, which
	// the daemon checks before it sets it.
	Demo *Demo
	// Ops, when set, serves the operators' endpoints (see Ops).
	Ops Ops
	// Usage, when set, serves /api/usage and /api/usage.csv and draws
	// usage on the dashboard.
	Usage  UsageSource
	Logger *slog.Logger
}

// Server is the HTTP server; build it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	hooks   *slots
	allowed map[string]bool
	// stopping is closed when the server shuts down, to end the build
	// logs it streams: a build can outlast Shutdown's grace.
	stopping chan struct{}
	stopOnce sync.Once
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
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.MaxHookReads <= 0 {
		cfg.MaxHookReads = DefaultHookReads
	}
	if cfg.MaxHookReadsPerSource <= 0 {
		cfg.MaxHookReadsPerSource = DefaultHookReadsPerSource
	}
	if cfg.HookReadTimeout <= 0 {
		cfg.HookReadTimeout = min(DefaultHookReadTimeout, cfg.BodyReadTimeout)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), hooks: newSlots(cfg.MaxHookReads, cfg.MaxHookReadsPerSource),
		allowed: map[string]bool{"localhost": true}, stopping: make(chan struct{})}
	for _, h := range cfg.AllowedHosts {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
		if h = strings.ToLower(strings.Trim(h, "[]")); h != "" {
			s.allowed[h] = true
		}
	}
	s.routes()
	s.handler = s.checkHost(s.mux)
	return s, nil
}

// checkHost answers 403 to a GET or HEAD whose Host is neither localhost,
// an IP address, nor an allowed name. Those endpoints need no token, so a
// page of another site whose name was rebound to this host's address
// could read them from a browser; it sends its own name as Host. Webhooks
// and mutating calls carry their own proof and reach a reverse proxy's
// public name.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		if !s.hostAllowed(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed answers 403 and returns false when r's Host is neither
// localhost, an IP address, nor an allowed name.
func (s *Server) hostAllowed(w http.ResponseWriter, r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if !s.allowed[host] && net.ParseIP(host) == nil {
		writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not allowed: the daemon answers to localhost, IP addresses and the names of --allowed-host", host))
		return false
	}
	return true
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, api.Ack{Status: "ok"})
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
	m.HandleFunc("POST /api/reset", s.auth(s.reset))
	m.HandleFunc("POST /api/share", s.auth(s.share))
	m.HandleFunc("POST /hooks/{provider}", s.hook)
	if s.cfg.Builds != nil {
		m.HandleFunc("GET /api/builds/running", s.runningBuilds)
		m.HandleFunc("GET /api/builds/log/{image...}", s.buildLog)
	}
	if s.cfg.Demo != nil {
		m.HandleFunc("POST /api/demo", s.demo)
	}
	m.HandleFunc("GET /{$}", s.dashboard)
	s.opsRoutes()
	s.usageRoutes()
}

// Handler returns the server's handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves on ln until ctx is cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	hs.RegisterOnShutdown(func() { s.stopOnce.Do(func() { close(s.stopping) }) })
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
	writeJSON(w, http.StatusOK, api.Ack{Status: "ready"})
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
func normalize(st api.Status) api.Status {
	if st.Courses == nil {
		st.Courses = []api.CourseView{}
	}
	if st.Images == nil {
		st.Images = []api.ImageView{}
	}
	if st.Builds == nil {
		st.Builds = []api.BuildView{}
	}
	if st.Actions == nil {
		st.Actions = []api.ActionView{}
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
	writeJSON(w, http.StatusOK, api.History{Records: recs})
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
	var req api.SpawnRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.Course == "" || req.Student == "" {
		writeError(w, http.StatusBadRequest, "course and student are required")
		return
	}
	if req.UID != nil {
		switch uid := *req.UID; {
		case uid == 0:
			writeError(w, http.StatusBadRequest, "uid 0 is root: a student's server never runs as root")
			return
		case uid < 0 || uid > math.MaxInt32-1:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("uid %d: want a user id from 1 to %d", uid, math.MaxInt32-1))
			return
		}
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
	var req api.SyncRequest
	// The body is optional: POST /api/sync?course=x works too.
	if r.ContentLength != 0 {
		if !s.decode(w, r, &req) {
			return
		}
	}
	if c := r.URL.Query().Get("course"); c != "" {
		req.Course = c
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
	var req api.ConfirmPruneRequest
	if r.ContentLength != 0 {
		if !s.decode(w, r, &req) {
			return
		}
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	if err := s.cfg.Backend.ConfirmPrune(ctx, req.Revision); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, api.Ack{Status: "confirmed"})
}

// workspaceFile decodes the body of a request about one file of a
// student's workspace; false when it answered already.
func (s *Server) workspaceFile(w http.ResponseWriter, r *http.Request, v any, course, student, path *string) bool {
	if !s.decode(w, r, v) {
		return false
	}
	if *course == "" || *student == "" || *path == "" {
		writeError(w, http.StatusBadRequest, "course, student and path are required")
		return false
	}
	return true
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	var req api.ResetRequest
	if !s.workspaceFile(w, r, &req, &req.Course, &req.Student, &req.Path) {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Backend.Reset(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) share(w http.ResponseWriter, r *http.Request) {
	var req api.ShareRequest
	if !s.workspaceFile(w, r, &req, &req.Course, &req.Student, &req.Path) {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Backend.Share(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// hook serves POST /hooks/{provider}: the signature header, a bounded
// body, then the HookHandler's verification and pass.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	provider := r.PathValue("provider")
	if s.cfg.Hooks == nil {
		writeError(w, http.StatusNotFound, "webhooks are not enabled")
		return
	}
	// The headers first: an unsigned request is refused before its body
	// is read.
	if s.cfg.HookHeaders != nil {
		if err := s.cfg.HookHeaders(provider, r.Header); err != nil {
			if errors.Is(err, ErrUnknownProvider) {
				writeError(w, http.StatusNotFound, err.Error())
				return
			}
			s.log.Warn("webhook refused", "provider", provider, "remote", r.RemoteAddr, "err", err)
			writeError(w, http.StatusUnauthorized, "webhook verification failed")
			return
		}
	}
	// Then a bounded number of bodies at once, in all and per source:
	// beyond it, the forge retries later.
	release, ok := s.hooks.take(hookSource(r))
	if !ok {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "too many webhooks at once; retry later")
		return
	}
	defer release()
	if r.ContentLength > s.cfg.MaxHookBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large: larger than %d bytes", s.cfg.MaxHookBody))
		return
	}
	body, ok := s.readBody(w, r, s.cfg.MaxHookBody, s.cfg.HookReadTimeout)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Hooks.Push(ctx, provider, r.Header, body)
	switch {
	case errors.Is(err, ErrUnknownProvider):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrInvalid):
		// Signed, hence from the forge, but unreadable: say so.
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrConflict):
		// Signed, but seen already: a replay.
		s.log.Warn("webhook refused", "provider", provider, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		// The reason goes to the log, not to an unauthenticated caller.
		s.log.Warn("webhook refused", "provider", provider, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusUnauthorized, "webhook verification failed")
		return
	}
	if res.Courses == nil {
		res.Courses = []string{}
	}
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

// readBody reads r's body, at most limit bytes and within timeout; on
// failure it answers 413 or 400 and returns false. A failed read is not
// described to the caller: the error of a connection names this host's
// addresses.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, bool) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large: larger than %d bytes", mbe.Limit))
			return nil, false
		}
		s.log.Info("request body not read", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusBadRequest, "the request body could not be read (too slow, or cut short)")
		return nil, false
	}
	return body, true
}

// decode reads a bounded JSON body strictly — unknown fields, duplicate
// keys and anything after the value are refused — into v; on failure it
// answers 400 (or 413) and returns false.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := s.readBody(w, r, DefaultMaxAPIBody, s.cfg.BodyReadTimeout)
	if !ok {
		return false
	}
	if err := strictJSON(body, v); err != nil {
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
	writeJSON(w, code, api.Error{Error: msg})
}
