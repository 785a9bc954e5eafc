package server

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/nbhosting/nbh-sync/api"
)

// Demo is the demo credential of a site on loopback (run --demo): the
// dashboard's "Open a demo student" spawns this student's server, with no
// token, and sends the browser to it through the front door.
type Demo struct {
	Student string
	// UID is the uid the demo student's server runs as (the host has no
	// account of the student's name).
	UID int
}

// demo serves POST /api/demo, for the dashboard's own page only: the call
// carries no token, so it must come from a page of this very origin (the
// browser's Origin and Sec-Fetch-Site say so, and a page of another site
// cannot set them) reached by an allowed host name (not a name rebound to
// this address).
func (s *Server) demo(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(w, r) {
		return
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "the demo action answers only to the dashboard's own page")
		return
	}
	var req api.DemoRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.Course == "" {
		writeError(w, http.StatusBadRequest, "course is required")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	uid := s.cfg.Demo.UID
	res, err := s.cfg.Backend.Spawn(ctx, api.SpawnRequest{Course: req.Course, Student: s.cfg.Demo.Student, UID: &uid})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.LaunchURL == "" {
		s.fail(w, r, fmt.Errorf("%w: no front door to open the notebook through (run --proxy-listen)", ErrNotReady))
		return
	}
	writeJSON(w, http.StatusOK, api.DemoResult{Name: res.Name, State: res.State, LaunchURL: res.LaunchURL})
}

// sameOrigin is true when r comes from a page of the origin it is sent to.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	o, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && o.Host != "" && o.Host == r.Host && (o.Scheme == "http" || o.Scheme == "https")
}
