package server

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"
)

//go:embed dashboard.html
var dashboardHTML string

// page is what the dashboard template renders.
type page struct {
	Status     Status
	Err        string
	Nonce      string
	RefreshSec int
	RefreshMS  int64
	// Now is the time the page is rendered at, for relative times.
	Now time.Time
}

// dashboardTemplate is parsed once; a bad template fails every test.
var dashboardTemplate = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
	"rfc":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago":  func(now, t time.Time) string { return humanize(now.Sub(t)) + " ago" },
	"in":   func(now, t time.Time) string { return "in " + humanize(t.Sub(now)) },
	"dur":  func(d time.Duration) string { return humanize(d) },
	"join": func(ss []string) string { return strings.Join(ss, ", ") },
}).Parse(dashboardHTML))

// humanize renders a duration the way people say it: 45s, 3m, 2h5m, 4d.
func humanize(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(math.Round(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 && h < 10 {
			return fmt.Sprintf("%dh%dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	p := page{
		Nonce:      nonce(),
		RefreshSec: int(s.cfg.Refresh.Seconds()),
		RefreshMS:  s.cfg.Refresh.Milliseconds(),
		Now:        time.Now(),
	}
	code := http.StatusOK
	st, err := s.cfg.Backend.Status(ctx)
	if err != nil {
		s.log.Error("dashboard status", "err", err)
		p.Err = err.Error()
		code = http.StatusServiceUnavailable
	}
	p.Status = normalize(st)
	var buf bytes.Buffer
	if err := dashboardTemplate.Execute(&buf, p); err != nil {
		s.log.Error("render dashboard", "err", err)
		writeError(w, http.StatusInternalServerError, "render dashboard: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Nothing from elsewhere: the site may be offline, and the page shows
	// build logs that anyone with a commit can influence.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "+
		"script-src 'nonce-"+p.Nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}
