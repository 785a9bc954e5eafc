package server

import (
	"fmt"
	"regexp"
	"strings"
)

// The dashboard shows each error in a few words an admin acts on, with the
// full text a click away: the full text of a git or engine error is a chain
// of wrapped operations in which the cause comes last.
var (
	dnsHost     = regexp.MustCompile(`lookup ([^\s:]+)(?: on \S+?)?: (?:no such host|server misbehaving|Temporary failure in name resolution|i/o timeout)`)
	urlHost     = regexp.MustCompile(`[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([^/:\s]+)`)
	scpHost     = regexp.MustCompile(`\b[\w.-]+@([\w.-]+):`)
	retryIn     = regexp.MustCompile(`\(?\bretry in ([0-9][0-9a-zµ.]*)\)?`)
	noDocker    = regexp.MustCompile(`image (\S+) cannot be built: no Dockerfile`)
	branchGone  = regexp.MustCompile(`branch (\S+)(?: not fetched|: branch not found)`)
	failedStage = regexp.MustCompile(`(?:build of (\S+) failed|image (\S+): (build|smoke|lint)\b)`)
)

// briefError returns a short, plain-words version of a long error text:
// "github.com unreachable (DNS) — retry in 9s". It falls back to the text's
// first line, cut at a word boundary.
func briefError(full string) string {
	s := strings.TrimSpace(full)
	var what string
	host := ""
	if m := urlHost.FindStringSubmatch(s); m != nil {
		host = m[1]
	} else if m := scpHost.FindStringSubmatch(s); m != nil {
		host = m[1]
	}
	switch {
	case dnsHost.MatchString(s):
		what = dnsHost.FindStringSubmatch(s)[1] + " unreachable (DNS)"
	case strings.Contains(s, "connection refused"):
		what = orName(host, "the remote") + " refused the connection"
	case strings.Contains(s, "network is unreachable") || strings.Contains(s, "no route to host"):
		what = orName(host, "the remote") + " unreachable (no network)"
	case strings.Contains(s, "i/o timeout") || strings.Contains(s, "deadline exceeded") || strings.Contains(s, "Client.Timeout"):
		what = orName(host, "the remote") + " did not answer (timeout)"
	case strings.Contains(s, "authentication required") || strings.Contains(s, "authorization failed") || strings.Contains(s, "401"):
		what = orName(host, "the remote") + " refused the credentials"
	case strings.Contains(s, "repository not found") || strings.Contains(s, "404"):
		what = "repository not found on " + orName(host, "the remote")
	case noDocker.MatchString(s):
		what = "no Dockerfile for image " + noDocker.FindStringSubmatch(s)[1]
	case branchGone.MatchString(s):
		what = "branch " + branchGone.FindStringSubmatch(s)[1] + " not found"
	case failedStage.MatchString(s):
		m := failedStage.FindStringSubmatch(s)
		switch {
		case m[1] != "":
			what = "build of " + m[1] + " failed"
		default:
			what = m[3] + " of image " + m[2] + " failed"
		}
	default:
		what = firstWords(s, 90)
	}
	if m := retryIn.FindStringSubmatch(s); m != nil {
		what += " — retry in " + m[1]
	}
	return what
}

func orName(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// firstWords returns the first line of s, cut before n bytes at a space.
func firstWords(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) <= n {
		return s
	}
	cut := strings.LastIndexByte(s[:n], ' ')
	if cut < n/2 {
		cut = n
	}
	return fmt.Sprintf("%s…", strings.TrimRight(s[:cut], " :,;"))
}
