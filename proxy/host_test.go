package proxy

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

const hostTmpl = "{student}-{course}.nb.example.org"

// dnsLabel is a label a browser and a DNS server both take as it is.
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func TestHostFor(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		tmpl string
		k    Key
		want string // "x…" for a hashed part: checked by shape
	}{
		{hostTmpl, Key{"intro", "alice"}, "alice-intro.nb.example.org"},
		{hostTmpl, Key{"py101", "s2024001"}, "s2024001-py101.nb.example.org"},
		{"nb-{course}--x-{student}.example.org", Key{"intro", "alice"}, ""}, // refused: "--"
		{"nb-{course}-{student}.example.org", Key{"intro", "alice"}, "nb-intro-alice.example.org"},
		{"{course}-u-{student}.Example.ORG", Key{"intro", "alice"}, "intro-u-alice.example.org"},
		{hostTmpl, Key{"intro", "jean-pierre"}, "x-intro.nb.example.org"},
		{hostTmpl, Key{"intro", "Alice"}, "x-intro.nb.example.org"},
		{hostTmpl, Key{"data_sci", "bob.smith"}, "x-x.nb.example.org"},
		{hostTmpl, Key{long, long}, "x-x.nb.example.org"},
		{hostTmpl, Key{"intro", strings.Repeat("b", plainMax)}, strings.Repeat("b", plainMax) + "-intro.nb.example.org"},
		{hostTmpl, Key{"intro", strings.Repeat("b", plainMax+1)}, "x-intro.nb.example.org"},
	} {
		h, err := parseHostTemplate(tc.tmpl)
		if tc.want == "" {
			if err == nil {
				t.Errorf("template %q accepted", tc.tmpl)
			}
			continue
		}
		if err != nil {
			t.Errorf("template %q: %v", tc.tmpl, err)
			continue
		}
		got := h.host(tc.k)
		first, _, _ := strings.Cut(got, ".")
		if !dnsLabel.MatchString(first) {
			t.Errorf("host(%v) = %q: first label is no DNS label", tc.k, got)
		}
		// Shape: each hashed part is "x" and 24 base32 digits.
		shape := regexp.MustCompile(`x[a-z2-7]{24}`).ReplaceAllString(got, "x")
		if shape != tc.want {
			t.Errorf("host(%v) = %q, want the shape %q", tc.k, got, tc.want)
		}
	}
}

// Distinct servers get distinct hosts, however close their names: else
// one student's pages would share an origin with another's server.
func TestHostForDistinct(t *testing.T) {
	hashOf := hostPart("Bob") // a student could be named like a hashed name
	keys := []Key{
		{"intro", "alice"}, {"intro", "Alice"}, {"intro", "ALICE"},
		{"a", "b-c"}, {"a-b", "c"}, {"ab", "c"}, {"a", "bc"}, {"a-b", "c-d"}, {"a", "b-c-d"},
		{"intro", "bob.smith"}, {"intro", "bob_smith"}, {"intro", "bob-smith"}, {"intro", "bobsmith"},
		{"intro", "Bob"}, {"intro", hashOf}, {"intro", strings.ToUpper(hashOf)},
		{"intro", strings.Repeat("b", plainMax)}, {"intro", strings.Repeat("b", plainMax+1)},
		{"intro-2", "alice"}, {"intro", "2-alice"}, {"intro2", "alice"},
		{"intro", "alice@example.org"}, {"intro", "alice.example.org"},
	}
	for _, tmpl := range []string{hostTmpl, "{course}-{student}.nb.example.org", "u{student}-{course}z.example.org"} {
		h, err := parseHostTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]Key{}
		for _, k := range keys {
			got := h.host(k)
			if other, dup := seen[got]; dup {
				t.Errorf("%s: %v and %v both get %q", tmpl, other, k, got)
			}
			seen[got] = k
			if first, _, _ := strings.Cut(got, "."); len(first) > 63 || !dnsLabel.MatchString(first) {
				t.Errorf("%s: host(%v) = %q: first label is no DNS label", tmpl, k, got)
			}
		}
	}
}

func TestCheckHostTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		want string // "" for ok, else a part of the error
	}{
		{hostTmpl, ""},
		{"{student}-{course}.localhost", ""},
		{"nb-{course}-{student}-u.example.org", ""},
		{"https://{student}-{course}.nb.example.org", "without a scheme"},
		{"{student}-{course}.nb.example.org/lab", "without a path"},
		{"{student}-{course}.nb.example.org:8443", "without a port"},
		{"{student}-{course}", "then the domain"},
		{"{student}-{course}.", "then the domain"},
		{"{student}.{course}.nb.example.org", "once each in the first label"},
		{"{student}-nb.example.org", "once each in the first label"},
		{"{student}-{student}-{course}.example.org", "once each in the first label"},
		{"{student}-{course}.{course}.example.org", "first label only"},
		{"{student}{course}.nb.example.org", "want a '-' between"},
		{"{student}x{course}.nb.example.org", "want a '-' between"},
		{"{student}_{course}.nb.example.org", "only letters, digits and '-'"},
		{"-{student}-{course}.nb.example.org", "may not start or end with '-'"},
		{"{student}-{course}-.nb.example.org", "may not start or end with '-'"},
		{"{student}--{course}.nb.example.org", `nor hold "--"`},
		{"{student}-" + strings.Repeat("n", 12) + "{course}.example.org", ""},
		{"{student}-" + strings.Repeat("n", 13) + "{course}.example.org", "at most 13"},
		{"{student}-{course}.nb..example.org", "is not a host name"},
		{"{student}-{course}.nb.example.org.", "is not a host name"},
		{"{student}-{course}.-nb.example.org", "is not a host name"},
		{"{student}-{course}.nb_1.example.org", "is not a host name"},
		{"{student}-{course}." + strings.Repeat("a", 64) + ".org", "is not a host name"},
		{"{student}-{course}." + strings.Repeat(strings.Repeat("a", 60)+".", 4) + "org", "longer than"},
	} {
		err := CheckHostTemplate(tc.tmpl)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckHostTemplate(%q) = %v, want %q", tc.tmpl, err, tc.want)
		}
	}
	if _, err := New(Options{Key: testKey, HostTemplate: "{student}.example.org"}); err == nil || !strings.Contains(err.Error(), `host template "{student}.example.org"`) {
		t.Errorf("New with a bad template: %v", err)
	}
}

// loginAt launches a session for r's server on host and returns its cookie.
func (f *front) loginAt(t *testing.T, host string, r Route) *http.Cookie {
	t.Helper()
	resp := f.at(t, http.MethodGet, host, f.Launch(r))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("launch on %s: %s", host, resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatal("launch set no session cookie")
	return nil
}

// hostFront is a front door with a host template, alice's server under
// the stable prefix and bob's under nbhosting's /PORT/.
func hostFront(t *testing.T) (f *front, obs *observer, alice, bob Route, aliceBe, bobBe *backend) {
	t.Helper()
	aliceBe, bobBe = newBackend(t, "/u/flot/alice/"), newBackend(t, "/9001/")
	obs = &observer{}
	// As behind the proxy in front that ends TLS: pages are https.
	f = newFront(t, Options{HostTemplate: hostTmpl, Observer: obs, Scheme: "https"})
	alice, bob = aliceBe.route("flot", "alice"), bobBe.route("flot", "bob")
	f.Routes().Set(alice)
	f.Routes().Set(bob)
	return f, obs, alice, bob, aliceBe, bobBe
}

func TestHostServesOnlyItsServer(t *testing.T) {
	f, _, alice, bob, aliceBe, bobBe := hostFront(t)
	aliceHost, bobHost := f.HostFor(alice.Key), f.HostFor(bob.Key)
	if aliceHost != "alice-flot.nb.example.org" || bobHost != "bob-flot.nb.example.org" {
		t.Fatalf("hosts %q, %q", aliceHost, bobHost)
	}
	aliceCookie := "Cookie: " + CookieName + "=" + f.loginAt(t, aliceHost, alice).Value
	bobCookie := "Cookie: " + CookieName + "=" + f.loginAt(t, bobHost, bob).Value

	for _, tc := range []struct {
		name, host, path, cookie string
		want                     int
		be                       *backend // reached when want is 200
	}{
		{"alice on her host", aliceHost, "/u/flot/alice/echo", aliceCookie, http.StatusOK, aliceBe},
		{"her host with a port, in capitals", "Alice-Flot.NB.example.org:8443", "/u/flot/alice/echo", aliceCookie, http.StatusOK, aliceBe},
		{"her host, fully qualified", aliceHost + ".", "/u/flot/alice/echo", aliceCookie, http.StatusOK, aliceBe},
		{"bob's /PORT/ on his host", bobHost, "/9001/echo", bobCookie, http.StatusOK, bobBe},
		{"alice's path on bob's host", bobHost, "/u/flot/alice/echo", aliceCookie, http.StatusNotFound, nil},
		{"alice's path on the public host", "hub.example.org", "/u/flot/alice/echo", aliceCookie, http.StatusNotFound, nil},
		{"alice's path on a host of the domain", "nb.example.org", "/u/flot/alice/echo", aliceCookie, http.StatusNotFound, nil},
		{"alice's prefix without its slash on bob's host", bobHost, "/u/flot/alice", "", http.StatusNotFound, nil},
		{"bob's /PORT/ on alice's host", aliceHost, "/9001/echo", bobCookie, http.StatusNotFound, nil},
		{"a course of alice's name on her host", aliceHost, "/u/other/alice/echo", aliceCookie, http.StatusNotFound, nil},
		{"a /PORT/ with no server, on alice's host, with bob's cookie", aliceHost, "/9002/echo", bobCookie, http.StatusNotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			na, nb := len(aliceBe.requests()), len(bobBe.requests())
			resp := f.at(t, http.MethodGet, tc.host, tc.path, tc.cookie)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %s, want %d", resp.Status, tc.want)
			}
			if tc.want == http.StatusNotFound && !strings.Contains(body(t, resp), "No student server lives at this address") {
				t.Error("404 without its message")
			}
			reachedA, reachedB := len(aliceBe.requests()) > na, len(bobBe.requests()) > nb
			if reachedA != (tc.be == aliceBe) || reachedB != (tc.be == bobBe) {
				t.Errorf("reached alice's server %v, bob's %v", reachedA, reachedB)
			}
		})
	}
}

func TestHostTickets(t *testing.T) {
	f, obs, alice, bob, _, _ := hostFront(t)
	aliceHost := f.HostFor(alice.Key)

	// Alice's own: a host-only cookie for her prefix, and a relative
	// redirect that stays on her host.
	resp := f.at(t, http.MethodGet, aliceHost, f.Launch(alice)+"&keep=1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/u/flot/alice/?keep=1" {
		t.Fatalf("launch: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == CookieName {
			sess = c
		}
	}
	raw := strings.Join(resp.Header.Values("Set-Cookie"), " | ")
	if sess == nil || sess.Domain != "" || strings.Contains(strings.ToLower(raw), "domain=") || sess.Path != "/u/flot/alice/" || !sess.HttpOnly {
		t.Errorf("session cookie %q: want host-only (no Domain), Path=/u/flot/alice/, HttpOnly", raw)
	}

	for _, tc := range []struct {
		name, path string
		want       int
		reason     string // told to the Observer
	}{
		// Bob's ticket on his own prefix, sent to alice's host.
		{"bob's at his /PORT/ on alice's host", f.Launch(bob), http.StatusNotFound, ""},
		{"bob's at alice's prefix on her host", "/u/flot/alice/?" + TicketParam + "=" + ticketOf(f.Launch(bob)), http.StatusForbidden, "ticket-other-server"},
		{"bob's at a /PORT/ with no server, on alice's host", "/9002/?" + TicketParam + "=" + ticketOf(f.Launch(bob)), http.StatusForbidden, "ticket-other-server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.at(t, http.MethodGet, aliceHost, tc.path)
			if resp.StatusCode != tc.want {
				t.Errorf("status %s, want %d", resp.Status, tc.want)
			}
			if got := obs.lastRejected(); got != tc.reason {
				t.Errorf("rejection counted as %q, want %q", got, tc.reason)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies set: %v", resp.Cookies())
			}
		})
	}
}

func ticketOf(launch string) string {
	_, tk, _ := strings.Cut(launch, TicketParam+"=")
	return tk
}

// Sibling hosts are same-site: bob's Lax cookie goes with a request a page
// of alice's host makes to bob's host. The Origin check stops it.
func TestHostCrossHostRefused(t *testing.T) {
	f, obs, alice, _, aliceBe, _ := hostFront(t)
	bobBe := newBackend(t, "/u/flot/bob/")
	bob := bobBe.route("flot", "bob")
	f.Routes().Set(bob)
	aliceHost, bobHost := f.HostFor(alice.Key), f.HostFor(bob.Key)
	bobCookie := "Cookie: " + CookieName + "=" + f.loginAt(t, bobHost, bob).Value
	ws := []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}

	for _, tc := range []struct {
		name   string
		method string
		header []string
		want   int
	}{
		{"POST from alice's page", http.MethodPost, []string{"Origin: https://" + aliceHost}, http.StatusForbidden},
		{"POST from alice's page, by fetch metadata", http.MethodPost, []string{"Sec-Fetch-Site: same-site"}, http.StatusForbidden},
		{"websocket from alice's page", http.MethodGet, append([]string{"Origin: https://" + aliceHost}, ws...), http.StatusForbidden},
		{"POST from bob's own page", http.MethodPost, []string{"Origin: https://" + bobHost, "Sec-Fetch-Site: same-origin"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(bobBe.requests())
			resp := f.at(t, tc.method, bobHost, "/u/flot/bob/echo", append(tc.header, bobCookie)...)
			if resp.StatusCode != tc.want {
				t.Errorf("status %s, want %d", resp.Status, tc.want)
			}
			if reached := len(bobBe.requests()) > n; reached != (tc.want == http.StatusOK) {
				t.Errorf("reached bob's server: %v", reached)
			}
			if tc.want == http.StatusForbidden {
				if got := obs.lastRejected(); got != "cross-origin" {
					t.Errorf("rejection counted as %q", got)
				}
			}
		})
	}
	if len(aliceBe.requests()) != 0 {
		t.Error("alice's server was reached")
	}
}

func TestLaunchURL(t *testing.T) {
	be := newBackend(t, "/u/flot/alice/")
	rt := be.route("flot", "alice")
	const deep = "notebooks/week%201/intro.ipynb"
	for _, tc := range []struct {
		tmpl, public, open, want string // want: the launch URL before its ticket
	}{
		{"", "https://hub.example.org", "", "https://hub.example.org/u/flot/alice/?nbh-ticket="},
		{"", "http://127.0.0.1:8000", "", "http://127.0.0.1:8000/u/flot/alice/?nbh-ticket="},
		{"", "https://hub.example.org", deep, "https://hub.example.org/u/flot/alice/" + deep + "?nbh-ticket="},
		{hostTmpl, "https://hub.example.org", "", "https://alice-flot.nb.example.org/u/flot/alice/?nbh-ticket="},
		{hostTmpl, "https://hub.example.org/", "", "https://alice-flot.nb.example.org/u/flot/alice/?nbh-ticket="},
		{hostTmpl, "http://hub.example.org:8080", "", "http://alice-flot.nb.example.org:8080/u/flot/alice/?nbh-ticket="},
		{hostTmpl, "https://hub.example.org", "lab/tree/intro.ipynb", "https://alice-flot.nb.example.org/u/flot/alice/lab/tree/intro.ipynb?nbh-ticket="},
		{"{student}-{course}.localhost", "http://127.0.0.1:8000", "", "http://alice-flot.localhost:8000/u/flot/alice/?nbh-ticket="},
		{"{student}-{course}.localhost", "http://[::1]:8000", "", "http://alice-flot.localhost:8000/u/flot/alice/?nbh-ticket="},
	} {
		f := newFront(t, Options{HostTemplate: tc.tmpl})
		f.Routes().Set(rt)
		public, err := url.Parse(tc.public)
		if err != nil {
			t.Fatal(err)
		}
		got := f.LaunchURL(public, rt, tc.open)
		if !strings.HasPrefix(got, tc.want) || len(got) == len(tc.want) {
			t.Errorf("%q, %s: launch URL %q, want %q and a ticket", tc.tmpl, tc.public, got, tc.want+"…")
			continue
		}
		// The URL works where it points, and lands on its path.
		u, _ := url.Parse(got)
		resp := f.at(t, http.MethodGet, u.Host, u.RequestURI())
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != u.EscapedPath() {
			t.Errorf("%q, %s: launch at %s: %s to %q, want %q", tc.tmpl, tc.public, got, resp.Status, resp.Header.Get("Location"), u.EscapedPath())
		}
	}
}
