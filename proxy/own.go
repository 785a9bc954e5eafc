package proxy

import (
	"context"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"
)

// OwnPrefix starts the paths the front door answers itself under a
// server's prefix, before anything reaches the server: /u/C/S/_nbh/…
// (no Jupyter route starts so). They are served only with the student's
// own session, and a POST only from the site's own pages, as every request
// that changes something (sameOrigin).
const OwnPrefix = "_nbh/"

// RestartPath is the student's own "restart my server": GET shows a
// button, POST restarts (stops and starts again) the server of the
// session's student and sends the browser back to it.
const RestartPath = OwnPrefix + "restart"

// Restarter restarts a student's server, for the student themself; it
// returns where the server now answers.
type Restarter interface {
	Restart(ctx context.Context, course, student string) (Route, error)
}

var restartTmpl = template.Must(template.New("restart").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Restart my server</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}button{font-size:1em;padding:.5em 1.2em}</style></head>
<body><h1>Restart my server</h1>
<p>Your server for <b>{{.Course}}</b> stops and starts again: running notebooks lose
their variables, your files are kept.</p>
<form method="post" action="{{.Action}}"><button type="submit">Restart my server</button>
<a href="{{.Back}}">Back to my notebooks</a></form></body></html>
`))

// own answers the front door's own paths under base for the session's
// student k; false when r's path is not one of them.
func (p *Proxy) own(w http.ResponseWriter, r *http.Request, base string, k Key) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, base+OwnPrefix)
	if !ok {
		return false
	}
	if rest != strings.TrimPrefix(RestartPath, OwnPrefix) || p.opts.Restarter == nil {
		notFound(w, r)
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		// The button must not work inside another site's frame (a click
		// there would be the student's own, Origin included).
		h.Set("Content-Security-Policy", "frame-ancestors 'self'")
		_ = restartTmpl.Execute(w, map[string]string{"Course": k.Course, "Action": base + RestartPath, "Back": base})
	case http.MethodPost:
		// The body (none is expected) is read within ReadTimeout; then the
		// connection's deadline goes, since a restart takes longer, and
		// the restart runs to its end even if the browser gives up.
		if _, err := io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10)); err != nil {
			answer(w, r, http.StatusBadRequest, page{Title: "Bad request", Message: "The request could not be read."})
			return true
		}
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.opts.SpawnTimeout)
		defer cancel()
		p.log.Info("student restarts their server", "course", k.Course, "student", k.Student, "remote", r.RemoteAddr)
		rt, err := p.opts.Restarter.Restart(ctx, k.Course, k.Student)
		if err != nil {
			p.log.Warn("restart through the front door failed", "course", k.Course, "student", k.Student, "err", err)
			answer(w, r, http.StatusInternalServerError, page{Title: "Your server could not be restarted",
				Message: "Try again in a minute; if it fails again, tell your teacher."})
			return true
		}
		p.routes.Set(rt)
		if rt.BasePath != base {
			p.setSession(w, r, k, rt.BasePath)
		}
		if !wantsHTML(r) {
			answer(w, r, http.StatusOK, page{Title: "Restarted", Message: "your server answers at " + rt.BasePath})
			return true
		}
		http.Redirect(w, r, rt.BasePath, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		answer(w, r, http.StatusMethodNotAllowed, page{Title: "Not allowed", Message: "GET or POST only."})
	}
	return true
}
