// Package webhook verifies the push webhooks of GitHub, GitLab,
// Gitea/Forgejo and a generic HMAC-SHA256 form, and maps a push to the
// remotes it concerns (keys of gitwatch.NormalizeURL). It does no I/O: the
// daemon's HTTP server reads the (bounded) body and decides what to
// trigger.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/gitwatch"
)

// Provider is the kind of forge that sent a webhook.
type Provider string

// The providers recognised, by their signature header.
const (
	GitHub  Provider = "github"  // X-Hub-Signature-256: sha256=<hex HMAC>
	GitLab  Provider = "gitlab"  // X-Gitlab-Token: <shared secret>
	Gitea   Provider = "gitea"   // X-Gitea-Signature: <hex HMAC>
	Forgejo Provider = "forgejo" // X-Forgejo-Signature: <hex HMAC>
	Generic Provider = "generic" // X-Signature-256: sha256=<hex HMAC>
)

// Error is a refused webhook; Status is the HTTP status to answer with
// (401 for a bad or missing signature, 404 for an unknown provider, 400 for
// an unreadable payload).
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("webhook: %s", e.Msg) }

// Is makes errors.Is(err, ErrUnauthorized) and the like match on status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Status == e.Status && t.Msg == ""
}

// Sentinels for errors.Is.
var (
	ErrUnauthorized = &Error{Status: http.StatusUnauthorized}
	ErrBadPayload   = &Error{Status: http.StatusBadRequest}
)

// Push is what a verified webhook says.
type Push struct {
	Provider Provider `json:"provider"`
	// Event is the forge's event name (push, Push Hook, ping...).
	Event string `json:"event,omitempty"`
	// IsPush is false for other events (a ping): they trigger nothing.
	IsPush bool `json:"is_push"`
	// URLs are the clone and web URLs of the repository, as sent.
	URLs []string `json:"urls"`
	// Ref is the ref pushed (refs/heads/main); Branch its branch name.
	Ref    string `json:"ref,omitempty"`
	Branch string `json:"branch,omitempty"`
	After  string `json:"after,omitempty"`
}

// Keys returns the normalized keys of URLs, sorted and without duplicates:
// the remotes the push concerns.
func (p *Push) Keys() []string {
	var keys []string
	for _, u := range p.URLs {
		keys = append(keys, gitwatch.NormalizeURL(u))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func checkHMAC(header, prefix string, body, secret []byte) error {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), prefix)
	if !ok {
		return &Error{Status: http.StatusUnauthorized, Msg: "signature lacks the " + prefix + " prefix"}
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return &Error{Status: http.StatusUnauthorized, Msg: "signature is not hex"}
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return &Error{Status: http.StatusUnauthorized, Msg: "signature does not match"}
	}
	return nil
}

// payload is the union of the push payload fields of the forges.
type payload struct {
	Ref        string   `json:"ref"`
	After      string   `json:"after"`
	URL        string   `json:"url"`
	Repository repoURLs `json:"repository"`
	Project    repoURLs `json:"project"`
}

type repoURLs struct {
	CloneURL   string `json:"clone_url"`
	SSHURL     string `json:"ssh_url"`
	GitURL     string `json:"git_url"`
	HTMLURL    string `json:"html_url"`
	GitHTTPURL string `json:"git_http_url"`
	GitSSHURL  string `json:"git_ssh_url"`
	HTTPURL    string `json:"http_url"`
	WebURL     string `json:"web_url"`
}

func (r repoURLs) all() []string {
	return []string{r.CloneURL, r.SSHURL, r.GitURL, r.HTMLURL, r.GitHTTPURL, r.GitSSHURL, r.HTTPURL, r.WebURL}
}

// Parse reads a verified body into a Push.
func Parse(p Provider, h http.Header, body []byte) (*Push, error) {
	var pl payload
	if err := json.Unmarshal(body, &pl); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "payload is not JSON: " + err.Error()}
	}
	push := &Push{Provider: p, Ref: pl.Ref, After: pl.After}
	for _, k := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Event"} {
		if v := h.Get(k); v != "" {
			push.Event = v
			break
		}
	}
	switch push.Event {
	case "push", "Push Hook", "":
		push.IsPush = pl.Ref != ""
	}
	for _, u := range append(append(pl.Repository.all(), pl.Project.all()...), pl.URL) {
		if u != "" && !slices.Contains(push.URLs, u) {
			push.URLs = append(push.URLs, u)
		}
	}
	push.Branch, _ = strings.CutPrefix(pl.Ref, "refs/heads/")
	if push.Branch == pl.Ref {
		push.Branch = ""
	}
	if push.IsPush && len(push.URLs) == 0 {
		return nil, &Error{Status: http.StatusBadRequest, Msg: "push payload names no repository URL"}
	}
	return push, nil
}
