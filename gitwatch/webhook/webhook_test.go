package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

func TestHandle(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		headers  map[string]string
		max      int64
		status   int // 0: accepted
		provider Provider
		keys     []string
		branch   string
		isPush   bool
	}{
		{"github ok", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush), "X-GitHub-Event": "push"},
			0, 0, GitHub, []string{"github.com/Parmentelat/FlotPython"}, "main", true},
		{"github ping", `{"zen":"x","repository":{"clone_url":"https://github.com/a/b.git"}}`,
			map[string]string{"X-Hub-Signature-256": "sha256=" + sign(`{"zen":"x","repository":{"clone_url":"https://github.com/a/b.git"}}`), "X-GitHub-Event": "ping"},
			0, 0, GitHub, []string{"github.com/a/b"}, "", false},
		{"github bad signature", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush+" ")}, 0, 401, "", nil, "", false},
		{"github no prefix", githubPush, map[string]string{"X-Hub-Signature-256": sign(githubPush)}, 0, 401, "", nil, "", false},
		{"github not hex", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, 0, 401, "", nil, "", false},
		{"no signature", githubPush, map[string]string{"X-GitHub-Event": "push"}, 0, 401, "", nil, "", false},
		{"gitlab ok", gitlabPush, map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"},
			0, 0, GitLab, []string{"gitlab.example.org/dept/intro"}, "dev", true},
		{"gitlab wrong token", gitlabPush, map[string]string{"X-Gitlab-Token": secret + "x"}, 0, 401, "", nil, "", false},
		{"gitea ok", giteaPush, map[string]string{"X-Gitea-Signature": sign(giteaPush), "X-Gitea-Event": "push",
			"X-Hub-Signature-256": "sha256=" + sign(giteaPush)}, 0, 0, Gitea, []string{"gitea.example.org/u/r"}, "main", true},
		{"forgejo ok", giteaPush, map[string]string{"X-Forgejo-Signature": sign(giteaPush), "X-Forgejo-Event": "push"},
			0, 0, Forgejo, []string{"gitea.example.org/u/r"}, "main", true},
		{"forgejo bad", giteaPush, map[string]string{"X-Forgejo-Signature": sign("other")}, 0, 401, "", nil, "", false},
		{"generic ok", `{"ref":"refs/heads/main","url":"file:///srv/git/c.git"}`,
			map[string]string{"X-Signature-256": "sha256=" + sign(`{"ref":"refs/heads/main","url":"file:///srv/git/c.git"}`)},
			0, 0, Generic, []string{"/srv/git/c.git"}, "main", true},
		{"too large", githubPush, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(githubPush)}, 10, 413, "", nil, "", false},
		{"not json", "nope", map[string]string{"X-Signature-256": "sha256=" + sign("nope")}, 0, 400, "", nil, "", false},
		{"push without url", `{"ref":"refs/heads/main"}`, map[string]string{"X-Signature-256": "sha256=" + sign(`{"ref":"refs/heads/main"}`)}, 0, 400, "", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hooks/git", strings.NewReader(tt.body))
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			p, err := Handle(r, []byte(secret), tt.max)
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

func TestErrorsIs(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	if _, err := Handle(r, []byte(secret), 0); !errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	r.Header.Set("X-Gitlab-Token", "")
	if _, err := Handle(r, nil, 0); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("empty secret: got %v, want unauthorized", err)
	}
}
