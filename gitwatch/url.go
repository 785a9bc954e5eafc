package gitwatch

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
)

// scpLike is git's user@host:path form (no scheme, a colon before the first
// slash).
var scpLike = regexp.MustCompile(`^(?:([A-Za-z0-9._-]+)@)?([A-Za-z0-9.-]+):([^/].*)$`)

// NormalizeURL maps the many spellings of one remote to one key, so that a
// webhook push names the mirrors it affects and courses that spell their
// repo differently share one mirror: scheme, user, port and a .git suffix
// are dropped, the host is lowercased, and a local path or file:// URL
// becomes a clean absolute path. https://GitHub.com/a/b.git,
// ssh://git@github.com:22/a/b and git@github.com:a/b all give
// "github.com/a/b". The path keeps its case: most servers are
// case-sensitive.
func NormalizeURL(raw string) string {
	s := strings.TrimSpace(raw)
	if isLocal(s) {
		return localPath(s)
	}
	var host, p string
	if m := scpLike.FindStringSubmatch(s); m != nil && !strings.Contains(s, "://") {
		host, p = m[2], m[3]
	} else if u, err := url.Parse(s); err == nil && u.Host != "" {
		host, p = u.Hostname(), u.Path
	} else {
		return s
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	p = strings.TrimSuffix(p, "/")
	return strings.ToLower(host) + "/" + p
}

// isLocal reports whether s names a repository on this machine: an absolute
// or relative path, or a file:// URL.
func isLocal(s string) bool {
	if strings.HasPrefix(s, "file://") || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || s == "." {
		return true
	}
	return !strings.Contains(s, "://") && !scpLike.MatchString(s)
}

// localPath turns a path or file:// URL into a clean absolute path.
func localPath(s string) string {
	if rest, ok := strings.CutPrefix(s, "file://"); ok {
		if u, err := url.Parse(s); err == nil {
			rest = u.Path
		}
		s = rest
	}
	if abs, err := filepath.Abs(s); err == nil {
		s = abs
	}
	return filepath.Clean(s)
}

// fetchURL is the URL handed to go-git: local paths become file:// URLs so
// that they go through the in-process transport.
func fetchURL(raw string) string {
	s := strings.TrimSpace(raw)
	if isLocal(s) {
		return "file://" + localPath(s)
	}
	return s
}

// defaultPorts are the ports a URL may leave out, by scheme.
var defaultPorts = map[string]string{"https": "443", "http": "80", "ssh": "22", "git": "9418"}

// mirrorKey names the remote a mirror holds: scheme, host, port and path
// (the port and scheme matter — two git servers on one host are two
// remotes, and http and https may serve different things), with the
// spellings of one remote made one: the host lowercased, a default port,
// the user (never a secret kept here) and a .git suffix dropped, and
// user@host:path read as ssh://host/path. A local path or file:// URL
// gives its clean absolute path. NormalizeURL, looser, matches webhook
// pushes to remotes.
func mirrorKey(raw string) string {
	s := strings.TrimSpace(raw)
	if isLocal(s) {
		return localPath(s)
	}
	var scheme, host, port, p string
	if m := scpLike.FindStringSubmatch(s); m != nil && !strings.Contains(s, "://") {
		scheme, host, p = "ssh", m[2], m[3]
	} else if u, err := url.Parse(s); err == nil && u.Host != "" {
		scheme, host, port, p = strings.ToLower(u.Scheme), u.Hostname(), u.Port(), u.Path
	} else {
		return RedactURL(s)
	}
	if port == defaultPorts[scheme] {
		port = ""
	}
	hostport := strings.ToLower(host)
	if strings.Contains(hostport, ":") {
		hostport = "[" + hostport + "]" // IPv6
	}
	if port != "" {
		hostport += ":" + port
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	return scheme + "://" + hostport + "/" + strings.TrimSuffix(p, "/")
}

// mirrorName is a stable directory name for the mirror of a remote: a
// readable part of its mirrorKey plus a hash of all of it, so two remotes
// never share a name by accident.
func mirrorName(raw string) string {
	key := mirrorKey(raw)
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	readable := strings.Trim(b.String(), "_.")
	if len(readable) > 60 {
		readable = readable[len(readable)-60:]
	}
	return readable + "-" + hex.EncodeToString(sum[:6])
}

// RedactURL returns raw without the user information it may carry (a
// password, or a token given as the user name), for everything shown or
// stored: logs, errors, status pages, labels, state files. Local paths and
// scp-like URLs (git@host:path, whose user is not a secret) come back
// unchanged.
func RedactURL(raw string) string {
	if !strings.Contains(raw, "://") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		// An unparsable URL may still carry user information: cut what
		// stands between the scheme and the last @ of the authority.
		scheme, rest, _ := strings.Cut(raw, "://")
		auth, path, found := strings.Cut(rest, "/")
		if i := strings.LastIndex(auth, "@"); i >= 0 {
			auth = auth[i+1:]
		}
		if found {
			return scheme + "://" + auth + "/" + path
		}
		return scheme + "://" + auth
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// URLUser reports whether raw, a URL other than ssh://, carries user
// information: a user name there is often a token (https://TOKEN@host/x),
// and Go's HTTP errors quote it. An ssh user is a login name (git), not a
// secret, as in the scp-like form git@host:path.
func URLUser(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil && u.Scheme != "ssh"
}

// urlUserInfo matches the user information of the URLs in a text.
var urlUserInfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s"'<>]*@`)

// RedactText returns s with the user information of every URL in it cut
// out: error texts of go-git and net/http quote the URL they failed on,
// user name included (net/http hides a password, never a user name).
func RedactText(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return urlUserInfo.ReplaceAllString(s, "$1")
}

// URLPassword reports whether raw carries a password in its user
// information (https://user:secret@host/...).
func URLPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}
