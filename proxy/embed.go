package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Framing. Whether another site's page may show the front door in a frame
// is the front door's decision, not a student's server's: one origin
// serves every student, and a server's own policy (Jupyter sends
// frame-ancestors 'self') would keep a learning platform's page from
// framing it, while a student's server could as well allow any site to.
// So every answer carries the front door's policy, and a server's
// frame-ancestors directive and X-Frame-Options are dropped.
//
// Without Options.FrameAncestors, pages may be framed by pages of their
// own origin only — what Jupyter itself does, for its PDF and HTML
// previews. With it, by those origins too; a session opened inside such a
// frame gets a cookie the browser sends there (SameSite=None, Partitioned),
// and requests of other sites that are not navigations are refused, so
// that SameSite=None lets no other site use the session in its scripts,
// images or forms.

// CheckFrameAncestor returns the origin o as a CSP source
// (scheme://host[:port], lowercase), or why it is not one.
func CheckFrameAncestor(o string) (string, error) {
	u, err := url.Parse(o)
	switch {
	case err != nil:
		return "", fmt.Errorf("origin %q: %w", o, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "", u.User != nil,
		u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.Opaque != "",
		strings.ContainsAny(u.Host, " ;,'\"*"):
		return "", fmt.Errorf("origin %q: want scheme://host[:port], e.g. https://lms.example.org", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// framePolicy returns the front door's Content-Security-Policy for
// framing: its own origin, and the allowed ones.
func framePolicy(ancestors []string) string {
	return "frame-ancestors " + strings.Join(append([]string{"'self'"}, ancestors...), " ")
}

// setFrameHeaders puts the front door's framing policy on an answer,
// with X-Frame-Options for browsers that know no CSP when no other origin
// is allowed (it cannot name one).
func (p *Proxy) setFrameHeaders(h http.Header) {
	h.Set("Content-Security-Policy", p.framePolicy)
	if len(p.opts.FrameAncestors) == 0 {
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
}

// dropServerFraming removes what a server says about framing: its
// X-Frame-Options, and the frame-ancestors directive of each of its
// policies (the rest of them stays: they narrow what its pages may do).
func dropServerFraming(h http.Header) {
	h.Del("X-Frame-Options")
	csp := h.Values("Content-Security-Policy")
	if len(csp) == 0 {
		return
	}
	var kept []string
	for _, policy := range csp {
		var ds []string
		for d := range strings.SplitSeq(policy, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
			if d = strings.TrimSpace(d); d != "" && !strings.EqualFold(name, "frame-ancestors") {
				ds = append(ds, d)
			}
		}
		if len(ds) > 0 {
			kept = append(kept, strings.Join(ds, "; "))
		}
	}
	if h.Del("Content-Security-Policy"); len(kept) > 0 {
		h["Content-Security-Policy"] = kept
	}
}

// inFrame reports whether r is a navigation of a frame.
func inFrame(r *http.Request) bool {
	d := r.Header.Get("Sec-Fetch-Dest")
	return d == "iframe" || d == "frame"
}

// crossSiteSubresource reports whether r comes from a page of another
// origin and is not a navigation: a script, image, form post or fetch of
// another site, which a SameSite=None cookie would otherwise carry.
// Browsers that send no fetch metadata are not asked.
func crossSiteSubresource(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	return r.Header.Get("Sec-Fetch-Mode") != "navigate" || r.Method != http.MethodGet && r.Method != http.MethodHead
}
