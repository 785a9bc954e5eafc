package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A host per student (Options.HostTemplate): each server is served on its
// own host as well as under its prefix, so that the browser's same-origin
// policy, not path-scoped cookies, keeps one student's pages away from
// another's servers.

// Course and student names become DNS label parts: a name of at most
// plainMax lowercase letters and digits stands for itself; any other
// (uppercase, '_', '.', '-', too long) becomes "x" and the base32 of a
// SHA-256 prefix, hashedLen characters. No plain name is that long, so
// the two forms never meet, and neither holds a '-': with a '-' between
// the placeholders (checked), a label is read back one way only, and two
// servers never share a host.
const (
	plainMax  = 24
	hashedLen = 1 + 24 // "x" + 24 base32 digits: 15 bytes, 120 bits
)

var hostBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hostPart encodes a course or student name for a host name.
func hostPart(name string) string {
	if len(name) > 0 && len(name) <= plainMax && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789") == "" {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "x" + strings.ToLower(hostBase32.EncodeToString(sum[:15]))
}

// hostTemplate is a parsed Options.HostTemplate: the first label is
// prefix, one placeholder, sep, the other, suffix; domain follows it.
type hostTemplate struct {
	prefix, sep, suffix string
	studentFirst        bool
	domain              string
}

// CheckHostTemplate reports what is wrong with a host template such as
// {student}-{course}.nb.example.org (Options.HostTemplate), nil if nothing.
func CheckHostTemplate(t string) error {
	_, err := parseHostTemplate(t)
	return err
}

const hostExample = "e.g. {student}-{course}.nb.example.org"

func parseHostTemplate(t string) (*hostTemplate, error) {
	t = strings.ToLower(t) // host names are case-insensitive
	switch {
	case strings.Contains(t, "://"):
		return nil, fmt.Errorf("want a host name without a scheme (%s): launch URLs take the scheme of the public URL", hostExample)
	case strings.ContainsAny(t, "/?#"):
		return nil, fmt.Errorf("want a host name without a path (%s): servers keep their prefix on their host", hostExample)
	case strings.Contains(t, ":"):
		return nil, fmt.Errorf("want a host name without a port (%s): launch URLs take the port of the public URL", hostExample)
	}
	first, domain, _ := strings.Cut(t, ".")
	if domain == "" {
		return nil, fmt.Errorf("want the students' label, then the domain the wildcard DNS record is for (%s)", hostExample)
	}
	if strings.Count(first, "{course}") != 1 || strings.Count(first, "{student}") != 1 {
		return nil, fmt.Errorf("want {course} and {student} once each in the first label (%s)", hostExample)
	}
	h := &hostTemplate{domain: domain}
	ic, is := strings.Index(first, "{course}"), strings.Index(first, "{student}")
	a, b := "{course}", "{student}"
	if is < ic {
		a, b, h.studentFirst = b, a, true
	}
	var rest string
	h.prefix, rest, _ = strings.Cut(first, a)
	h.sep, h.suffix, _ = strings.Cut(rest, b)
	lit := h.prefix + h.sep + h.suffix
	switch {
	case strings.ContainsAny(domain, "{}"):
		return nil, fmt.Errorf("{course} and {student} belong in the first label only (%s)", hostExample)
	case strings.Trim(lit, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		return nil, fmt.Errorf("the first label may hold only letters, digits and '-' besides {course} and {student} (%s)", hostExample)
	case !strings.Contains(h.sep, "-"):
		return nil, fmt.Errorf("want a '-' between {course} and {student} (%s): without one, two students could get the same host", hostExample)
	case strings.HasPrefix(h.prefix, "-") || strings.HasSuffix(h.suffix, "-") ||
		strings.Contains(h.prefix, "--") || strings.Contains(h.sep, "--") || strings.Contains(h.suffix, "--"):
		return nil, fmt.Errorf("the first label may not start or end with '-', nor hold \"--\" (%s)", hostExample)
	case len(lit)+2*hashedLen > 63:
		return nil, fmt.Errorf("the first label's text besides {course} and {student} is %d characters, at most %d: each name may take %d of a label's 63", len(lit), 63-2*hashedLen, hashedLen)
	case len(domain) > 253-64:
		return nil, fmt.Errorf("the domain %q is longer than %d characters: host names are at most 253", domain, 253-64)
	}
	for l := range strings.SplitSeq(domain, ".") {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || l[0] == '-' || l[len(l)-1] == '-' {
			return nil, fmt.Errorf("the domain %q is not a host name: labels of 1 to 63 letters, digits and '-' (not at either end), dot-separated, with no trailing dot", domain)
		}
	}
	return h, nil
}

// host returns the host of k's server.
func (h *hostTemplate) host(k Key) string {
	a, b := hostPart(k.Course), hostPart(k.Student)
	if h.studentFirst {
		a, b = b, a
	}
	return h.prefix + a + h.sep + b + h.suffix + "." + h.domain
}

// HostFor returns the host k's server is served on, "" unless
// Options.HostTemplate is set.
func (p *Proxy) HostFor(k Key) string {
	if p.hosts == nil {
		return ""
	}
	return p.hosts.host(k)
}

// onHost reports whether r may reach k's server by the host it came to:
// always without a host template; else only on k's own host.
func (p *Proxy) onHost(r *http.Request, k Key) bool {
	if p.hosts == nil {
		return true
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	return strings.EqualFold(strings.TrimSuffix(h, "."), p.hosts.host(k))
}

// LaunchURL returns the launch URL of r's server (see Launch) under the
// front door's public URL, scheme://host[:port] (any path is dropped: the
// front door serves from the root). With a host template, the server's own
// host takes the place of the public URL's host; the scheme and port stay,
// since the proxy in front serves every student's host as it serves the
// public one. open is a path under the server's prefix to land on (see
// LaunchAt), "" for the prefix itself.
func (p *Proxy) LaunchURL(public *url.URL, r Route, open string) string {
	host := public.Host
	if p.hosts != nil {
		host = p.hosts.host(r.Key)
		if port := public.Port(); port != "" {
			host = net.JoinHostPort(host, port)
		}
	}
	return public.Scheme + "://" + host + p.LaunchAt(r, open)
}
