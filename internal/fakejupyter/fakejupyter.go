// Package fakejupyter is a tiny stand-in for a Jupyter server, for tests:
// it speaks the REST shapes nbh-sync reads (/api, /api/status, /api/kernels
// with last_activity and execution_state), checks the token the way Jupyter
// does, serves under a base_url prefix, and has a control endpoint to set
// its kernels. Like the real server, every authenticated API request moves
// the global last_activity of /api/status, so that a probe which read it
// would wrongly see its own requests as activity.
package fakejupyter

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// Kernel is one kernel as /api/kernels shows it.
type Kernel struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	LastActivity   time.Time `json:"last_activity"`
	ExecutionState string    `json:"execution_state"`
	Connections    int       `json:"connections"`
}

// Server is the fake. Make one with New.
type Server struct {
	base    string
	token   string
	started time.Time

	mu           sync.Mutex
	kernels      []Kernel
	lastActivity time.Time
}

// New returns a server under base (e.g. "/8888/"; "" means "/") that wants
// token ("" = no auth), with kernels to start with.
func New(base, token string, kernels []Kernel) *Server {
	if !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	now := time.Now().UTC()
	return &Server{base: base, token: token, started: now, lastActivity: now, kernels: kernels}
}

// SetKernels replaces the kernels.
func (s *Server) SetKernels(ks []Kernel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kernels = ks
}

// ServeHTTP implements the REST API:
//
//	GET  {base}api            {"version": ...}, no auth (as Jupyter)
//	GET  {base}api/status     started, last_activity, kernels, connections
//	GET  {base}api/kernels    the kernels
//	PUT  {base}fake/kernels   replace the kernels (JSON list of Kernel)
//	GET  {base}fake/ls?dir=D  names of the files in D, sorted (JSON list)
//	GET  {base}fake/ws        a websocket echo, counted as no connection
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, s.base)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if p == "api" || p == "api/" {
		writeJSON(w, map[string]string{"version": "2.14.2"})
		return
	}
	if !s.authorized(r) {
		http.Error(w, `{"message": "Forbidden", "reason": null}`, http.StatusForbidden)
		return
	}
	if p == "fake/ws" {
		// An echo websocket that is no kernel's, so that the server
		// counts it nowhere: only a proxy in front can see it.
		websocket.Handler(func(c *websocket.Conn) { _, _ = io.Copy(c, c) }).ServeHTTP(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case p == "api/status" && r.Method == http.MethodGet:
		// Jupyter does not count /api/status itself as activity.
		writeJSON(w, map[string]any{"started": s.started, "last_activity": s.lastActivity,
			"kernels": len(s.kernels), "connections": 0})
	case p == "api/kernels" && r.Method == http.MethodGet:
		s.lastActivity = time.Now().UTC()
		ks := s.kernels
		if ks == nil {
			ks = []Kernel{}
		}
		writeJSON(w, ks)
	case p == "fake/kernels" && r.Method == http.MethodPut:
		var ks []Kernel
		if err := json.NewDecoder(r.Body).Decode(&ks); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.kernels = ks
		w.WriteHeader(http.StatusNoContent)
	case p == "fake/ls" && r.Method == http.MethodGet:
		ents, err := os.ReadDir(r.URL.Query().Get("dir"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		writeJSON(w, names)
	default:
		http.NotFound(w, r)
	}
}

// authorized accepts the token the ways Jupyter does: an Authorization
// header "token X" or a token query parameter.
func (s *Server) authorized(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "token "); ok && h == s.token {
		return true
	}
	return r.URL.Query().Get("token") == s.token
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
