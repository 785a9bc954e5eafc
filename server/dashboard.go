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
	"slices"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/livelog"
)

//go:embed dashboard.html
var dashboardHTML string

// page is what the dashboard template renders.
type page struct {
	Status api.Status
	// Courses are the cards, each with the errors that belong to it;
	// SiteErrors what belongs to no course nor image.
	Courses    []courseCard
	SiteErrors []string
	// Live are the builds running now (their logs stream into the page);
	// DemoStudent, when set, puts "Open a demo student" on the cards.
	Live        []livelog.Build
	DemoStudent string
	Err         string
	Nonce       string
	RefreshSec  int
	RefreshMS   int64
	// Now is the time the page is rendered at, for relative times.
	Now time.Time
	// Usage is the usage section's charts (inline SVG), when the daemon
	// keeps usage.
	Usage template.HTML
	// Admin shows the admin view (its calls need the API token).
	Admin bool
}

// dashboardTemplate is parsed once; a bad template fails every test.
var dashboardTemplate = template.Must(template.New("dashboard").Funcs(template.FuncMap{
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n]
	},
	"rfc":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago":   func(now, t time.Time) string { return humanize(now.Sub(t)) + " ago" },
	"in":    func(now, t time.Time) string { return "in " + humanize(t.Sub(now)) },
	"dur":   func(d time.Duration) string { return humanize(d) },
	"join":  func(ss []string) string { return strings.Join(ss, ", ") },
	"brief": briefError,
	// Only a failure is red: an action's result is also "done" or
	// "skipped", and a spawn's the container's state ("created").
	"actionFailed": func(result string) bool { return result == "failed" },
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
	if s.cfg.Builds != nil {
		p.Live = s.cfg.Builds.Running()
	}
	if s.cfg.Demo != nil {
		p.DemoStudent = s.cfg.Demo.Student
	}
	p.Courses, p.SiteErrors = placeErrors(p.Status)
	p.Admin = s.cfg.Ops != nil
	if s.cfg.Usage != nil {
		if u, err := s.cfg.Usage.Usage(ctx, "", 90); err == nil {
			p.Usage = usageCharts(u)
		} else {
			s.log.Warn("dashboard usage", "err", err)
		}
	}
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
	// build logs that anyone with a commit can influence. Its script talks
	// to this origin only (live build logs, the demo action).
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; "+
		"script-src 'nonce-"+p.Nonce+"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.StdEncoding.EncodeToString(b)
}

// courseCard is a course as its card shows it.
type courseCard struct {
	api.CourseView
	// Errors are the full texts of the course's errors, each once.
	Errors []string
	// ImageShown is true when the images table has the course's image,
	// which then shows the image's error instead of the card.
	ImageShown bool
}

// placeErrors puts each error where it belongs, once: a course's own error,
// and a site error naming the course's repo, on the course's card; an
// image's error on the image's row (a course card only says its image
// failed); the rest stays site-wide. The status carries the same failure
// in several lists, and an admin reading it seven times looks for seven
// problems.
func placeErrors(st api.Status) ([]courseCard, []string) {
	onImages := map[string]bool{}
	images := map[string]bool{}
	for _, img := range st.Images {
		images[img.Name] = true
		if img.Error != "" {
			onImages[img.Error] = true
		}
		if img.Failed != nil && img.Failed.Error != "" {
			onImages[img.Failed.Error] = true
		}
	}
	cards := make([]courseCard, len(st.Courses))
	add := func(c *courseCard, e string) {
		for _, have := range c.Errors {
			if strings.Contains(have, e) || strings.Contains(e, have) {
				return
			}
		}
		c.Errors = append(c.Errors, e)
	}
	for i, co := range st.Courses {
		c := courseCard{CourseView: co, ImageShown: images[co.Image]}
		if co.Error != "" && !onImages[co.Error] {
			add(&c, co.Error)
		}
		if co.ImageError != "" && !c.ImageShown {
			add(&c, co.ImageError)
		}
		cards[i] = c
	}
	var site []string
	for _, e := range st.Errors {
		placed := onImages[e]
		for i := range cards {
			if cards[i].Repo != "" && strings.Contains(e, cards[i].Repo) {
				add(&cards[i], e)
				placed = true
			}
		}
		if !placed && !slices.Contains(site, e) {
			site = append(site, e)
		}
	}
	return cards, site
}
