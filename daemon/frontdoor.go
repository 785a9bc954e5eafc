package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/proxy"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/share"
)

// ProxyOptions configure the front door (run --proxy-listen).
type ProxyOptions struct {
	// Listen is its address; empty means no front door.
	Listen string
	// PublicURL is where browsers reach it (https://hub.example.org), the
	// start of the launch URLs the spawn API answers; by default the
	// listening address.
	PublicURL string
	// LoginURL is where a browser without a session is sent; without it,
	// it gets a 403 page.
	LoginURL string
	// SecureCookies marks session cookies Secure behind a TLS-ending proxy.
	SecureCookies bool
	// HostTemplate, when set, serves each student's server on its own host
	// as well as under its prefix, e.g. {student}-{course}.nb.example.org
	// (proxy.Options.HostTemplate); launch URLs then take that host.
	HostTemplate string
	// EmbedAllow are the origins whose pages may show the front door in a
	// frame (proxy.Options.FrameAncestors): a learning platform.
	EmbedAllow []string
}

// check refuses URLs that would make broken launch links or redirects,
// and a host template that would make bad or shared hosts.
func (o ProxyOptions) check() error {
	if o.HostTemplate != "" {
		if err := proxy.CheckHostTemplate(o.HostTemplate); err != nil {
			return fmt.Errorf("--proxy-host-template %q: %w", o.HostTemplate, err)
		}
		if sitePath(o.LoginURL) {
			// A browser without a session is on a student's host, where
			// the front door serves nothing but that student's server.
			return fmt.Errorf("--proxy-login-url %q: with --proxy-host-template, want an absolute URL (https://hub.example.org%s): a path would be looked up on the student's host", o.LoginURL, o.LoginURL)
		}
	}
	for _, o := range o.EmbedAllow {
		if _, err := proxy.CheckFrameAncestor(o); err != nil {
			return fmt.Errorf("--proxy-embed-allow: %w", err)
		}
	}
	for _, f := range []struct{ flag, value string }{{"--proxy-public-url", o.PublicURL}, {"--proxy-login-url", o.LoginURL}} {
		if f.value == "" || f.flag == "--proxy-login-url" && sitePath(f.value) {
			continue // a login page on the same site may be given by its path
		}
		u, err := url.Parse(f.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("%s %q: want an absolute http:// or https:// URL, e.g. https://hub.example.org (or, for the login page, a path)", f.flag, f.value)
		}
		if f.flag == "--proxy-public-url" && (u.RawQuery != "" || strings.Trim(u.Path, "/") != "") {
			return fmt.Errorf("%s %q: want the site's root (scheme and host), with no path or query: the front door serves /u/… there", f.flag, f.value)
		}
	}
	return nil
}

// sitePath reports whether u is a path on the front door's own site
// (/login), not a URL: "//host/…" is another site.
func sitePath(u string) bool { return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") }

// startFrontDoor makes the proxy and serves it on its own listener until
// ctx ends; the returned wait blocks until it has stopped.
func (d *daemon) startFrontDoor(ctx context.Context) (wait func(), err error) {
	o := d.opts.Proxy
	if err := o.check(); err != nil {
		return nil, err
	}
	key, err := proxy.LoadKey(rootdir.ProxySessionKey(d.opts.Root))
	if err != nil {
		return nil, err
	}
	var scheme string // browsers reach the listener itself by http
	if u, err := url.Parse(o.PublicURL); err == nil {
		scheme = u.Scheme // checked above: "" (none given), http or https
	}
	d.proxy, err = proxy.New(proxy.Options{
		Spawner: proxySpawner{d}, Restarter: frontDoorRestarter{d}, Usage: d.usage, Tokens: siteTokens{d}, Scheme: scheme,
		Key: key, LoginURL: o.LoginURL, SecureCookies: o.SecureCookies, HostTemplate: o.HostTemplate, FrameAncestors: o.EmbedAllow,
		Observer: d.metrics, Log: d.log.With("part", "proxy"), Outside: d.outside,
	})
	if err != nil {
		return nil, err
	}
	if len(o.EmbedAllow) > 0 && !o.SecureCookies && scheme != "https" {
		d.log.Warn("front door: frames of --proxy-embed-allow get no session without TLS: session cookies of frames must be Secure (--proxy-secure-cookies behind a TLS-ending proxy); students there see a page saying so")
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("--proxy-listen: %w", err)
	}
	public := cmp.Or(o.PublicURL, "http://"+ln.Addr().String())
	if d.publicURL, err = url.Parse(public); err != nil { // checked above: only the listener's own address gets here
		ln.Close()
		return nil, fmt.Errorf("front door public URL %q: %w", public, err)
	}
	d.log.Info("front door listening", "addr", ln.Addr().String(), "public", d.publicURL.String(), "host_template", o.HostTemplate)
	// No ReadTimeout or WriteTimeout: they would cut students' uploads,
	// downloads and websockets. The proxy bounds the reading of every
	// request it answers itself (proxy.Options.ReadTimeout).
	srv := &http.Server{Handler: withShares(d.proxy, d.site.Shares().Handler()), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("front door", "err", err)
		}
	})
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Websockets are hijacked connections Shutdown does not wait
		// for; the servers behind them keep running.
		_ = srv.Shutdown(sctx)
	})
	return func() { wg.Wait(); stop() }, nil
}

// withShares serves the notebooks students shared (share.Prefix) beside
// the students' servers: read-only pages that anyone with the link may see,
// so no session is asked for.
func withShares(front, shares http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, share.Prefix) {
			shares.ServeHTTP(w, r)
			return
		}
		front.ServeHTTP(w, r)
	})
}

// observed follows a container pass's listing into the route table.
func (d *daemon) observed(cs []containers.Container, at time.Time) {
	if d.proxy == nil {
		return
	}
	var routes []proxy.Route
	for _, c := range cs {
		if c.State == containers.Running && c.Port != 0 && c.BasePath != "" {
			routes = append(routes, proxy.Route{Key: proxy.Key{Course: c.Course, Student: c.Student},
				// On Swarm the server is on its node (c.Host), not on the site's HostIP.
				Host: net.JoinHostPort(cmp.Or(c.Host, d.site.HostIP()), strconv.Itoa(c.Port)), BasePath: c.BasePath, Port: c.Port, UID: c.UID})
		}
	}
	d.proxy.Routes().Sync(routes, at)
}

// warmed puts a server a warm-up started in the route table, as a spawn
// through the API does (launch): the pass that started it listed the
// containers before, so without this the student's first click would
// spawn (engine calls, a readiness check) until the next pass lists it.
func (d *daemon) warmed(course, student string, sp containers.Spawned) {
	if d.proxy != nil {
		d.proxy.Routes().Set(spawnedRoute(course, student, sp))
	}
}

// spawnedRoute is the route of a server Spawn handed out.
func spawnedRoute(course, student string, sp containers.Spawned) proxy.Route {
	host := ""
	if u, err := url.Parse(sp.URL); err == nil {
		host = u.Host
	}
	return proxy.Route{Key: proxy.Key{Course: course, Student: student}, Host: host, BasePath: sp.BasePath, Port: sp.Port, UID: sp.UID}
}

// launch registers a spawned server with the front door and returns its
// launch URL, landing on open under the server's prefix ("" without a
// front door).
func (d *daemon) launch(course, student string, sp containers.Spawned, open string) string {
	if d.proxy == nil {
		return ""
	}
	rt := spawnedRoute(course, student, sp)
	d.proxy.Routes().Set(rt)
	return d.proxy.LaunchURL(d.publicURL, rt, open)
}

// proxySpawner starts servers for the front door, as the spawn API does.
type proxySpawner struct{ d *daemon }

func (s proxySpawner) Spawn(ctx context.Context, course, student string) (proxy.Route, error) {
	sp, err := s.d.site.Spawn(ctx, course, student, "")
	if err != nil {
		return proxy.Route{}, err
	}
	s.d.usage.session(course, student)
	return spawnedRoute(course, student, sp), nil
}

// siteTokens give each server the token the site started it with (the
// course's container.token, else the one derived per student): the same
// the activity probe sends.
type siteTokens struct{ d *daemon }

func (m siteTokens) TokenFor(course, student string) string {
	var port int
	var uid string
	if rt, ok := m.d.proxy.Routes().Lookup(proxy.Key{Course: course, Student: student}); ok {
		port, uid = rt.Port, rt.UID
	}
	tok, err := m.d.site.ServerToken(context.Background(), course, student, port, uid)
	if err != nil {
		m.d.log.Warn("front door: no token for a server", "course", course, "student", student, "err", err)
	}
	return tok
}
