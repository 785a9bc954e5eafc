// Package proxy is the students' front door: an authenticating reverse
// proxy in front of their Jupyter servers.
//
// Routing: every server is served under the prefix it was started with
// (its Jupyter base_url) — the stable /u/COURSE/STUDENT/, or nbhosting's
// /PORT/ — and paths are never rewritten. The route table comes from the
// container passes and from spawns.
//
// Access: the site's front end authenticates the student, asks the daemon
// to spawn (POST /api/spawn) and sends the browser to the launch URL it
// gets back, which carries a short-lived single-use ticket bound to
// (course, student). The proxy trades the ticket for a session cookie
// scoped to the server's prefix (HttpOnly, SameSite=Lax, Secure under TLS;
// None and Partitioned in the frame of a platform allowed to embed it, see
// embed.go) and forwards requests with the server's Jupyter token added, so the
// browser never holds the token. The container sees neither the cookie nor
// anything a client says about forwarding; responses never carry the token,
// and carry only the headers Jupyter sends (serverHeaders).
// With a host template (Options.HostTemplate) each server is served only on
// a host of its own as well, so that students' pages are different origins
// and not only different paths of one.
//
// On demand: a page load with a valid session on a server that is down
// starts (or creates) it behind a "starting your server" page, which
// reloads itself when an event stream says the start has ended. Scripts and
// websockets (an open tab reconnecting) do not: else no idle server could
// ever be stopped while a browser tab stays open somewhere.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/naming"
)

// Names the browser sees.
const (
	// CookieName is the session cookie.
	CookieName = "nbh-session"
	// TicketParam is the query parameter of the launch ticket.
	TicketParam = "nbh-ticket"
)

// Spawner starts a student's server.
type Spawner interface {
	// Spawn makes sure the server runs and answers, and returns its route.
	// Errors wrapping manifest.ErrArchived or ErrUnknownCourse get a
	// page saying so.
	Spawn(ctx context.Context, course, student string) (Route, error)
}

// Tokens say which Jupyter token each server expects.
type Tokens interface {
	// TokenFor returns the token of a student's server ("" for none).
	TokenFor(course, student string) string
}

// Observer is told what the front door does, for the daemon's metrics
// (metrics.Metrics implements it).
type Observer interface {
	// FrontDoorRequest counts a request answered, by status class: 1xx
	// for a websocket upgrade (counted when it closes), 2xx … 5xx.
	FrontDoorRequest(class string)
	// FrontDoorWebsockets moves the count of open websockets by delta.
	FrontDoorWebsockets(delta int)
	// FrontDoorSpawn records a server started on demand: ok, archived,
	// unknown-course or error, and how long it took.
	FrontDoorSpawn(result string, d time.Duration)
	// FrontDoorRejected counts a launch ticket or session refused, by
	// reason: ticket-unknown (forged or replayed), ticket-expired,
	// ticket-other-server, no-session, session-forged, session-expired,
	// session-other-student, cross-origin.
	FrontDoorRejected(reason string)
}

// Options configure a Proxy.
type Options struct {
	// Routes is the route table; a new one when nil.
	Routes *Table
	// Spawner starts servers on demand; without it a server that is down
	// gets a page asking to open it again from the course page.
	Spawner Spawner
	// Restarter serves the student's own "restart my server"
	// (RestartPath); without it that path is not found.
	Restarter Restarter
	// Usage, when set, is told of every notebook a student opens.
	Usage UsageSink
	// Tokens give the servers' Jupyter tokens; none are sent when nil.
	Tokens Tokens
	// Key signs session cookies (at least 32 bytes; see LoadKey).
	Key []byte
	// TicketTTL bounds the life of a launch ticket (60s); SessionTTL that
	// of a session cookie (12h).
	TicketTTL, SessionTTL time.Duration
	// LoginURL, when set, is where a request without a valid session is
	// sent (with ?next=PATH) instead of a 403 page.
	LoginURL string
	// HostTemplate, when set, serves each server on its own host too, e.g.
	// {student}-{course}.nb.example.org (see CheckHostTemplate, HostFor):
	// a request is served only on the host of the server its path names,
	// so that every student's pages are an origin of their own.
	HostTemplate string
	// SecureCookies marks session cookies Secure even when the request
	// came in plain HTTP: set it when TLS ends in a proxy in front.
	SecureCookies bool
	// FrameAncestors are the origins (scheme://host[:port]: a learning
	// platform) whose pages may show the front door in a frame; without
	// them, only pages of its own origin may (see CheckFrameAncestor and
	// the framing notes in embed.go).
	FrameAncestors []string
	// Scheme is the scheme browsers reach the front door by, which the
	// Origin of a request that changes something must have. By default
	// https on a TLS connection or with SecureCookies, else http.
	Scheme string
	// StartWait is how long a request waits for a server that is starting
	// before it gets the "starting" page (2s).
	StartWait time.Duration
	// SpawnTimeout bounds an on-demand spawn (3m).
	SpawnTimeout time.Duration
	// ReadTimeout bounds the reading of a request the front door answers
	// itself — refused, redirected, a "starting" page — body included
	// (10s): else a body sent a byte at a time holds the connection, since
	// the HTTP server reads what a handler left before it answers. A
	// request forwarded to a student's server has no bound, so that
	// uploads and websockets last as long as they need.
	ReadTimeout time.Duration
	// Transport reaches the servers; a tuned http.Transport when nil.
	Transport http.RoundTripper
	// Observer is told what the proxy does; nil observes nothing.
	Observer Observer
	Log      *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Outside, when set, is where the front door records its traffic
	// (requests, open websockets) for the idle rule: the site's, shared
	// with its other outside sources. Nil records into one of its own.
	Outside *activity.Outside
}

// Proxy is the front door; it is an http.Handler.
type Proxy struct {
	opts     Options
	log      *slog.Logger
	routes   *Table
	tickets  *tickets
	sessions sessions
	traffic  *activity.Outside
	hosts    *hostTemplate // nil without Options.HostTemplate
	// framePolicy is the Content-Security-Policy of every answer.
	framePolicy string
	rp          *httputil.ReverseProxy
	obs         Observer // never nil

	mu   sync.Mutex
	jobs map[Key]*job
}

var _ activity.TrafficSource = (*Proxy)(nil)

// New returns a Proxy.
func New(opts Options) (*Proxy, error) {
	if len(opts.Key) < 32 {
		return nil, errors.New("proxy: session key shorter than 32 bytes")
	}
	if opts.Routes == nil {
		opts.Routes = NewTable()
	}
	if opts.TicketTTL <= 0 {
		opts.TicketTTL = time.Minute
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.StartWait <= 0 {
		opts.StartWait = 2 * time.Second
	}
	if opts.SpawnTimeout <= 0 {
		opts.SpawnTimeout = 3 * time.Minute
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Outside == nil {
		opts.Outside = activity.NewOutside(opts.Now)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Transport == nil {
		opts.Transport = &http.Transport{
			// Never an environment proxy: servers are on this host.
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Bodies are read as sent, so that the token can be found in
			// them; compress in the proxy in front if wanted.
			DisableCompression: true,
			// The default 4 KiB buffers: a websocket keeps its connection's
			// buffers for its whole life, and large reads bypass them.
		}
	}
	p := &Proxy{
		opts:     opts,
		log:      opts.Log,
		routes:   opts.Routes,
		tickets:  newTickets(opts.TicketTTL, opts.Now),
		sessions: newSessions(opts.Key, opts.SessionTTL, opts.Now),
		traffic:  opts.Outside,
		jobs:     map[Key]*job{},
		obs:      opts.Observer,
	}
	for i, o := range opts.FrameAncestors {
		var err error
		if opts.FrameAncestors[i], err = CheckFrameAncestor(o); err != nil {
			return nil, fmt.Errorf("proxy: frame ancestors: %w", err)
		}
	}
	p.framePolicy = framePolicy(opts.FrameAncestors)
	if opts.HostTemplate != "" {
		var err error
		if p.hosts, err = parseHostTemplate(opts.HostTemplate); err != nil {
			return nil, fmt.Errorf("proxy: host template %q: %w", opts.HostTemplate, err)
		}
	}
	if p.obs == nil {
		p.obs = unobserved{}
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.backendDown,
		Transport:      opts.Transport,
		BufferPool:     bufferPool{},
		ErrorLog:       slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// Routes returns the route table.
func (p *Proxy) Routes() *Table { return p.routes }

// Traffic implements activity.TrafficSource.
func (p *Proxy) Traffic(course, student string) (activity.Traffic, bool) {
	return p.traffic.Traffic(course, student)
}

// Launch returns a new launch path for r's server: its prefix with a
// ticket, valid once, for TicketTTL. The front end sends the browser there
// (after the proxy's public URL: see LaunchURL).
func (p *Proxy) Launch(r Route) string { return p.LaunchAt(r, "") }

// LaunchAt is Launch landing on open, a path under the server's prefix
// (a deep link: notebooks/intro.ipynb). A ticket is good on every path of
// its server, and trading it keeps the path: the browser lands there.
func (p *Proxy) LaunchAt(r Route, open string) string {
	return r.BasePath + open + "?" + TicketParam + "=" + p.tickets.issue(r.Key)
}

// target is what a request resolved to.
type target struct {
	route Route
	token string
}

type ctxKey struct{}

// retriedKey marks a request already forwarded once more after its server
// was found down, so that a server that keeps refusing is not retried in a
// loop.
type retriedKey struct{}

// ServeHTTP routes, authenticates and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.opts.Observer == nil {
		p.serve(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { p.obs.FrontDoorRequest(sw.class()) }()
	p.serve(sw, r)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	// The wall clock, not Options.Now: the connection's deadline is real.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(p.opts.ReadTimeout))
	p.setFrameHeaders(w.Header())
	if r.Method == http.MethodConnect {
		answer(w, r, http.StatusMethodNotAllowed, page{Title: "Not allowed", Message: "CONNECT is not served here."})
		return
	}
	if err := checkPath(r.URL); err != nil {
		answer(w, r, http.StatusBadRequest, page{Title: "Bad request", Message: "This address is not allowed: " + err.Error() + "."})
		return
	}
	if u := r.Header.Get("Upgrade"); u != "" && !isWebsocket(r) {
		answer(w, r, http.StatusBadRequest, page{Title: "Bad request", Message: "Only websocket upgrades are served."})
		return
	}
	base, key, known, ok := p.resolve(r.URL.Path)
	if !ok || known && !p.onHost(r, key) {
		notFound(w, r)
		return
	}
	if r.Header.Get("Service-Worker") != "" && !strings.HasPrefix(r.URL.Path, base) {
		// A worker controls at most its script's directory (no server
		// may widen that: see serverHeaders), so a script inside the
		// prefix keeps it there; the bare prefix /u/C/S is a script of
		// /u/C/, every classmate's.
		answer(w, r, http.StatusForbidden, page{Title: "Not allowed", Message: "A service worker may only come from inside a server's prefix."})
		return
	}
	if r.URL.Path == strings.TrimSuffix(base, "/") {
		http.Redirect(w, r, base+query(r.URL.RawQuery), http.StatusMovedPermanently)
		return
	}
	if len(p.opts.FrameAncestors) > 0 && crossSiteSubresource(r) {
		// Sessions made in frames are SameSite=None: what Lax kept out,
		// the front door keeps out itself.
		p.obs.FrontDoorRejected("cross-origin")
		answer(w, r, http.StatusForbidden, page{Title: "Cross-site request refused",
			Message: "Pages of other sites may show this server in a frame, and nothing else."})
		return
	}

	// A launch: trade the ticket for a session cookie, then drop the
	// ticket from the address bar (and from the history).
	if q := r.URL.Query(); q.Has(TicketParam) {
		tk, refused := p.tickets.redeem(q.Get(TicketParam))
		if refused == "" && (known && tk != key || !p.onHost(r, tk)) {
			refused = "ticket-other-server"
		}
		if refused != "" {
			p.obs.FrontDoorRejected(refused)
			p.log.Warn("launch ticket refused", "path", base, "remote", r.RemoteAddr, "reason", refused)
			answer(w, r, http.StatusForbidden, page{Title: "This link has expired",
				Message: "Launch links work once, for a minute. Open your server again from your course page."})
			return
		}
		p.setSession(w, r, tk, base)
		w.Header().Set("Cache-Control", "no-store") // nothing may keep the cookie
		w.Header().Set("Referrer-Policy", "no-referrer")
		q.Del(TicketParam)
		// The path as it came, escaped: a notebook named q?.ipynb stays one.
		http.Redirect(w, r, r.URL.EscapedPath()+query(q.Encode()), http.StatusSeeOther)
		return
	}

	sess, refused := p.session(r, key, known)
	if refused != "" {
		p.obs.FrontDoorRejected(refused)
		p.denied(w, r)
		return
	}
	if !sameOrigin(r, p.scheme(r)) {
		p.obs.FrontDoorRejected("cross-origin")
		answer(w, r, http.StatusForbidden, page{Title: "Cross-site request refused",
			Message: "Only pages of this site may change things on your server."})
		return
	}
	key = sess
	if !known && !p.onHost(r, key) {
		// A /PORT/ with no server now: the session says whose it was,
		// and it must be this host's. A browser sends only this host's
		// (host-only) cookies; another client may send any.
		notFound(w, r)
		return
	}
	if r.URL.Query().Has(WaitParam) {
		p.waitEvents(w, r, key)
		return
	}
	if p.own(w, r, base, key) {
		return
	}
	rt, up := p.routes.Lookup(key)
	if up && rt.BasePath != base {
		// The server lives under another prefix (made again on another
		// port, or made before the stable prefix): follow it there.
		p.setSession(w, r, key, rt.BasePath)
		http.Redirect(w, r, rt.BasePath, http.StatusSeeOther)
		return
	}
	if !up {
		if !wantsHTML(r) {
			notRunning(w, r)
			return
		}
		if rt, up = p.waitStart(w, r, key); !up {
			return
		}
		if rt.BasePath != base {
			p.setSession(w, r, key, rt.BasePath)
			http.Redirect(w, r, rt.BasePath, http.StatusSeeOther)
			return
		}
	}
	p.forward(w, r, rt)
}

// forward hands the request to the server of rt, with no read deadline:
// it is a student's, in their own server.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rt Route) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	t := target{route: rt}
	if p.opts.Tokens != nil {
		t.token = p.opts.Tokens.TokenFor(rt.Course, rt.Student)
	}
	if isWebsocket(r) {
		p.obs.FrontDoorWebsockets(1)
		defer p.obs.FrontDoorWebsockets(-1)
		defer p.traffic.Opened(rt.Key.Course, rt.Key.Student)()
	} else {
		p.traffic.Seen(rt.Key.Course, rt.Key.Student)
		p.noteNotebook(r, rt)
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
}

// resolve maps a path to its prefix and, when the path names it, the
// student. ok is false for a path no server can live under.
func (p *Proxy) resolve(path string) (base string, k Key, known, ok bool) {
	if rest, found := strings.CutPrefix(path, naming.PrefixRoot); found {
		c, rest, ok := strings.Cut(rest, "/")
		s, _, _ := strings.Cut(rest, "/")
		k := Key{c, s}
		if !ok {
			return "", Key{}, false, false
		}
		// A route's names were checked when it was made; others are
		// checked here, as container names.
		if _, routed := p.routes.Lookup(k); !routed {
			if cc, ss, valid := naming.Split(naming.Container(c, s)); !valid || cc != c || ss != s {
				return "", Key{}, false, false
			}
		}
		if n := len(naming.PrefixRoot) + len(c) + len(s) + 2; len(path) >= n {
			return path[:n], k, true, true // the prefix itself, as it starts path
		}
		return naming.Prefix(c, s), k, true, true
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	port, err := strconv.Atoi(first)
	if err != nil || port <= 0 || port > 65535 || strconv.Itoa(port) != first {
		return "", Key{}, false, false
	}
	base = naming.BasePath(port)
	if rt, found := p.routes.ByBase(base); found {
		return base, rt.Key, true, true
	}
	// No server there now: the session says whose it was.
	return base, Key{}, false, true
}

// session returns the student of a valid session cookie sent with r: for
// key when known, else the first valid one. Every cookie of the name is
// tried, since a page of another prefix may have set one with a wider
// path (it cannot forge a valid one). Without one, refused says why (see
// Observer.FrontDoorRejected).
func (p *Proxy) session(r *http.Request, key Key, known bool) (k Key, refused string) {
	refused = "no-session"
	for _, c := range r.CookiesNamed(CookieName) {
		k, why := p.sessions.verify(c.Value)
		switch {
		case why != "":
			refused = why
		case !known || k == key:
			return k, ""
		default:
			refused = "session-other-student"
		}
	}
	return Key{}, refused
}

// scheme returns the scheme browsers reached r's site by.
func (p *Proxy) scheme(r *http.Request) string {
	switch {
	case p.opts.Scheme != "":
		return p.opts.Scheme
	case r.TLS != nil || p.opts.SecureCookies:
		return "https"
	}
	return "http"
}

func (p *Proxy) setSession(w http.ResponseWriter, r *http.Request, k Key, base string) {
	c := &http.Cookie{
		Name: CookieName, Value: p.sessions.value(k), Path: base,
		MaxAge: int(p.opts.SessionTTL / time.Second), HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: p.opts.SecureCookies || r.TLS != nil,
	}
	if c.Secure && len(p.opts.FrameAncestors) > 0 && inFrame(r) {
		// In another site's frame a Lax cookie is never sent. None needs
		// Secure; Partitioned keeps the cookie to pages under the same
		// top-level site (and is what browsers that block third-party
		// cookies still accept).
		c.SameSite, c.Partitioned = http.SameSiteNoneMode, true
	}
	http.SetCookie(w, c)
}

func (p *Proxy) denied(w http.ResponseWriter, r *http.Request) {
	if inFrame(r) && len(p.opts.FrameAncestors) > 0 {
		// Most often the browser dropped the cookie of the launch it just
		// made (third-party cookies blocked): a login page would not help
		// in the frame, a tab of its own does.
		answer(w, r, http.StatusForbidden, page{Title: "This notebook cannot open inside this page",
			Message: "Your browser keeps the notebook's session out of pages of other sites (it blocks third-party cookies), or the session has ended. Open it in a tab of its own, or allow cookies for this site.",
			Link:    r.URL.RequestURI(), LinkText: "Open the notebook in a new tab"})
		return
	}
	if p.opts.LoginURL != "" && r.Method == http.MethodGet {
		u := p.opts.LoginURL
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		http.Redirect(w, r, u+sep+"next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
		return
	}
	answer(w, r, http.StatusForbidden, page{Title: "Access denied",
		Message: "Open your server from your course page: this browser has no session for it."})
}

// notFound answers a path no server lives under, or a server's path on
// another server's host.
func notFound(w http.ResponseWriter, r *http.Request) {
	answer(w, r, http.StatusNotFound, page{Title: "Not found", Message: "No student server lives at this address."})
}

// notRunning answers a script or websocket whose server is down.
func notRunning(w http.ResponseWriter, r *http.Request) {
	answer(w, r, http.StatusServiceUnavailable, page{Title: "Your server is not running",
		Message: "Reload the page to start it again."})
}

func query(raw string) string {
	if raw == "" {
		return ""
	}
	return "?" + raw
}

// rewrite prepares the request for the server. ReverseProxy has already
// removed hop-by-hop headers (those named in Connection too) and the
// client's X-Forwarded-For/Host/Proto.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(target)
	pr.SetURL(&url.URL{Scheme: "http", Host: t.route.Host})
	// Keep the browser's Host: Jupyter checks a websocket's Origin against
	// it.
	pr.Out.Host = pr.In.Host
	h := pr.Out.Header
	stripForwarded(h)
	pr.SetXForwarded()
	if c := stripCookie(h.Values("Cookie"), CookieName); len(c) > 0 {
		h["Cookie"] = c
	} else {
		h.Del("Cookie")
	}
	h.Del("Authorization")
	// Jupyter reads a token= parameter before the header: a client's own
	// guess must not stand in for the token the proxy sends.
	if strings.Contains(pr.Out.URL.RawQuery, "token") {
		if q := pr.Out.URL.Query(); q.Has("token") {
			q.Del("token")
			pr.Out.URL.RawQuery = q.Encode()
		}
	}
	if t.token != "" {
		h.Set("Authorization", "token "+t.token)
		// Compressed frames would hide the token from frameRedactor.
		h.Del("Sec-Websocket-Extensions")
	}
	h.Del("Accept-Encoding")
}

// modifyResponse keeps the token and the server's own login cookie from
// the browser, a server's cookies inside its prefix, and its other
// headers to those of serverHeaders.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	t, _ := resp.Request.Context().Value(ctxKey{}).(target)
	keepServerHeaders(resp.Header, resp.StatusCode == http.StatusSwitchingProtocols)
	dropServerFraming(resp.Header)
	if scs := resp.Header.Values("Set-Cookie"); len(scs) > 0 {
		var kept []string
		for _, sc := range scs {
			if !jupyterLoginCookie(sc) && ownCookie(sc, t.route.BasePath) {
				kept = append(kept, sc)
			}
		}
		resp.Header["Set-Cookie"] = kept
	}
	redactHeaders(resp.Header, t.token)
	if t.token == "" || resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = newRedactor(resp.Body, t.token)
	} else if conn, ok := resp.Body.(io.ReadWriteCloser); ok {
		resp.Body = newFrameRedactor(conn, t.token)
	}
	return nil
}

// backendDown answers when the server could not be reached: it is started
// again behind the "starting" page, never a bare 502.
func (p *Proxy) backendDown(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	t := r.Context().Value(ctxKey{}).(target)
	p.log.Info("server unreachable through the front door", "course", t.route.Course, "student", t.route.Student, "err", err)
	p.routes.Drop(t.route)
	if !wantsHTML(r) || r.Method != http.MethodGet || r.Context().Value(retriedKey{}) != nil {
		notRunning(w, r)
		return
	}
	if rt, up := p.waitStart(w, r, t.route.Key); up {
		if rt.BasePath != t.route.BasePath {
			p.setSession(w, r, rt.Key, rt.BasePath)
			http.Redirect(w, r, rt.BasePath, http.StatusSeeOther)
			return
		}
		p.forward(w, r.WithContext(context.WithValue(r.Context(), retriedKey{}, true)), rt)
	}
}

// statusWriter keeps the status of the answer, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // not 100 Continue, 103 Early Hints
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Hijack is how a websocket upgrade answers (ReverseProxy writes the 101
// on the hijacked connection).
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach Flush and the deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) class() string {
	if w.code == 0 {
		return "none" // the client went away before any answer
	}
	return strconv.Itoa(w.code/100) + "xx"
}

// unobserved is the Observer of a proxy without one.
type unobserved struct{}

func (unobserved) FrontDoorRequest(string)              {}
func (unobserved) FrontDoorWebsockets(int)              {}
func (unobserved) FrontDoorSpawn(string, time.Duration) {}
func (unobserved) FrontDoorRejected(string)             {}

// bufferPool lends ReverseProxy 64 KiB copy buffers (its default is 32 KiB
// allocated per copy).
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// String describes a route for logs.
func (r Route) String() string {
	return fmt.Sprintf("%s/%s at %s%s", r.Course, r.Student, r.Host, r.BasePath)
}
