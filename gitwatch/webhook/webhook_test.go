package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

const secret = "hush"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return hex.EncodeToString(mac.Sum(nil))
}

const githubPush = `{"ref":"refs/heads/main","after":"abc","repository":{
 "clone_url":"https://github.com/Parmentelat/FlotPython.git","ssh_url":"git@github.com:Parmentelat/FlotPython.git",
 "git_url":"git://github.com/Parmentelat/FlotPython.git","html_url":"https://github.com/Parmentelat/FlotPython"}}`

const gitlabPush = `{"object_kind":"push","ref":"refs/heads/dev","after":"def","project":{
 "git_http_url":"https://GitLab.example.org/dept/intro.git","git_ssh_url":"git@gitlab.example.org:dept/intro.git",
 "web_url":"https://gitlab.example.org/dept/intro"}}`

const giteaPush = `{"ref":"refs/heads/main","after":"123","repository":{
 "clone_url":"https://gitea.example.org/u/r.git","ssh_url":"ssh://git@gitea.example.org:2222/u/r.git","html_url":"https://gitea.example.org/u/r"}}`

// TestVerifyAndParse is the daemon's path: the path's provider's signature,
// then the payload.
func TestVerifyAndParse(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		provider Provider // the path's
		headers  map[string]string
		status   int // 0: accepted
		keys     []string
		branch   string
		isPush   bool
	}{
		{"github ok", githubPush, GitHub, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush), "X-GitHub-Event": "push"},
			0, []string{"github.com/Parmentelat/FlotPython"}, "main", true},
		{"github ping", `{"zen":"x","repository":{"clone_url":"https://github.com/a/b.git"}}`, GitHub,
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(`{"zen":"x","repository":{"clone_url":"https://github.com/a/b.git"}}`), "X-GitHub-Event": "ping"},
			0, []string{"github.com/a/b"}, "", false},
		{"github bad signature", githubPush, GitHub, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush+" ")}, 401, nil, "", false},
		{"github no prefix", githubPush, GitHub, map[string]string{"X-Hub-Signature-256": sign(githubPush)}, 401, nil, "", false},
		{"github not hex", githubPush, GitHub, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 401, nil, "", false},
		{"no signature", githubPush, GitHub, map[string]string{"X-GitHub-Event": "push"}, 401, nil, "", false},
		{"gitlab ok", gitlabPush, GitLab, map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"},
			0, []string{"gitlab.example.org/dept/intro"}, "dev", true},
		{"gitlab wrong token", gitlabPush, GitLab, map[string]string{"X-Gitlab-Token": secret + "x"}, 401, nil, "", false},
		{"gitea ok", giteaPush, Gitea, map[string]string{"X-Gitea-Signature": sign(giteaPush), "X-Gitea-Event": "push",
			"X-Hub-Signature-256": "sha256=" + sign(giteaPush)}, 0, []string{"gitea.example.org/u/r"}, "main", true},
		{"forgejo ok", giteaPush, Forgejo, map[string]string{"X-Forgejo-Signature": sign(giteaPush), "X-Forgejo-Event": "push"},
			0, []string{"gitea.example.org/u/r"}, "main", true},
		{"forgejo bad", giteaPush, Forgejo, map[string]string{"X-Forgejo-Signature": sign("other")}, 401, nil, "", false},
		{"generic ok", `{"ref":"refs/heads/main","url":"file:///srv/git/c.git"}`, Generic,
			map[string]string{"X-Signature-256": "sha256=" + sign(`{"ref":"refs/heads/main","url":"file:///srv/git/c.git"}`)},
			0, []string{"/srv/git/c.git"}, "main", true},
		{"not json", "nope", Generic, map[string]string{"X-Signature-256": "sha256=" + sign("nope")}, 400, nil, "", false},
		{"push without url", `{"ref":"refs/heads/main"}`, Generic, map[string]string{"X-Signature-256": "sha256=" + sign(`{"ref":"refs/heads/main"}`)}, 400, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(tt.body))
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			p, err := verifyAndParse(tt.provider, r)
			if tt.status != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Status != tt.status {
					t.Fatalf("got %v, want status %d", err, tt.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Provider != tt.provider || p.Branch != tt.branch || p.IsPush != tt.isPush || !slices.Equal(p.Keys(), tt.keys) {
				t.Fatalf("got %+v keys %v; want %s %s push=%v %v", p, p.Keys(), tt.provider, tt.branch, tt.isPush, tt.keys)
			}
		})
	}
}

func verifyAndParse(p Provider, r *http.Request) (*Push, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if err := VerifyFor(p, r.Header, body, []byte(secret)); err != nil {
		return nil, err
	}
	return Parse(p, r.Header, body)
}

func TestErrorsIs(t *testing.T) {
	h := http.Header{}
	if err := VerifyFor(GitHub, h, []byte("{}"), []byte(secret)); !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrBadPayload) {
		t.Fatalf("got %v", err)
	}
	h.Set("X-Gitlab-Token", "x")
	if err := VerifyFor(GitLab, h, []byte("{}"), nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("empty secret: got %v, want unauthorized", err)
	}
	if _, err := Parse(Generic, h, []byte("nope")); !errors.Is(err, ErrBadPayload) {
		t.Fatalf("not JSON: got %v, want a bad payload", err)
	}
}
