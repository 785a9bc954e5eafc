package server

import (
	"context"
	"net/http"

	"github.com/nbhosting/nbh-sync/api"
)

// Ops is what the operators' endpoints need from the daemon: actions on one
// student's server, course holds, the admin view's search. It is apart from
// Backend so that a daemon without it serves the rest; the errors map to
// statuses as Backend's do.
type Ops interface {
	// Student acts on one student's server (api.StudentStop, …). A
	// refusal because the server is active wraps ErrConflict and says
	// what it is doing.
	Student(ctx context.Context, course, student, action string, req api.StudentRequest) (api.StudentResult, error)
	// Students searches servers and workspaces for the admin view.
	Students(ctx context.Context, q string) (api.Students, error)
	// Suspend and Resume put a course on hold and lift a runtime hold;
	// Holds lists the courses on hold.
	Suspend(ctx context.Context, course string, req api.HoldRequest) (api.Holds, error)
	Resume(ctx context.Context, course string, req api.HoldRequest) (api.Holds, error)
	Holds(ctx context.Context) (api.Holds, error)
}

// opsRoutes serves the operators' endpoints, every one behind the token:
// even the search, which names students and shows their activity.
func (s *Server) opsRoutes() {
	if s.cfg.Ops == nil {
		return
	}
	m := s.mux
	m.HandleFunc("POST /api/students/{course}/{student}/{action}", s.auth(s.studentAction))
	m.HandleFunc("GET /api/students", s.auth(s.students))
	m.HandleFunc("POST /api/courses/{course}/suspend", s.auth(s.hold(true)))
	m.HandleFunc("POST /api/courses/{course}/resume", s.auth(s.hold(false)))
	m.HandleFunc("GET /api/holds", s.holds)
}

func (s *Server) studentAction(w http.ResponseWriter, r *http.Request) {
	var req api.StudentRequest
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	action := r.PathValue("action")
	switch {
	case action != api.StudentStop && action != api.StudentRestart && action != api.StudentRemove:
		writeError(w, http.StatusNotFound, "no action "+action+": stop, restart or remove")
		return
	case req.Workspace && !req.Yes:
		writeError(w, http.StatusBadRequest, "workspace: true moves the student's work to the trash: confirm with yes: true")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Ops.Student(ctx, r.PathValue("course"), r.PathValue("student"), action, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) students(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Ops.Students(ctx, r.URL.Query().Get("q"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) hold(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.HoldRequest
		if r.ContentLength != 0 && !s.decode(w, r, &req) {
			return
		}
		ctx, cancel := s.ctx(r)
		defer cancel()
		f := s.cfg.Ops.Resume
		if suspend {
			f = s.cfg.Ops.Suspend
		}
		res, err := f(ctx, r.PathValue("course"), req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

// holds serves GET /api/holds: which courses are on hold is no secret
// (the status says it too).
func (s *Server) holds(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	res, err := s.cfg.Ops.Holds(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
