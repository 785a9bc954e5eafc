package webhook

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestVerifyForByThePathsProviderOnly(t *testing.T) {
	body := githubPush
	tests := []struct {
		name     string
		provider Provider
		headers  map[string]string
		ok       bool
	}{
		{"github signed", GitHub, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(body)}, true},
		{"plaintext gitlab token at github", GitHub, map[string]string{"X-Gitlab-Token": secret}, false},
		{"gitea signature at github", GitHub, map[string]string{"X-Gitea-Signature": sign(body)}, false},
		{"gitlab token at gitlab", GitLab, map[string]string{"X-Gitlab-Token": secret}, true},
		{"github signature at gitlab", GitLab, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(body)}, false},
		{"gitea at gitea", Gitea, map[string]string{"X-Gitea-Signature": sign(body)}, true},
		{"github header at gitea", Gitea, map[string]string{"X-Hub-Signature-256": "sha256=" + sign(body)}, false},
		{"forgejo at forgejo", Forgejo, map[string]string{"X-Forgejo-Signature": sign(body)}, true},
		{"gitlab token at generic", Generic, map[string]string{"X-Gitlab-Token": secret}, false},
		{"generic at generic", Generic, map[string]string{"X-Signature-256": "sha256=" + sign(body)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			err := VerifyFor(tt.provider, h, []byte(body), []byte(secret))
			if (err == nil) != tt.ok {
				t.Fatalf("VerifyFor = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("error %v does not match ErrUnauthorized", err)
			}
		})
	}
}

func TestCheckHeaderShape(t *testing.T) {
	long := make([]byte, 2000)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name     string
		provider Provider
		header   string
		value    string
		status   int // 0: ok
	}{
		{"hmac ok", GitHub, "X-Hub-Signature-256", "sha256=" + sign("x"), 0},
		{"missing", GitHub, "", "", 401},
		{"no prefix", GitHub, "X-Hub-Signature-256", sign("x"), 401},
		{"short", GitHub, "X-Hub-Signature-256", "sha256=abcd", 401},
		{"not hex", Gitea, "X-Gitea-Signature", "zz" + sign("x")[2:], 401},
		{"token ok", GitLab, "X-Gitlab-Token", "t", 0},
		{"token too long", GitLab, "X-Gitlab-Token", string(long), 401},
		{"unknown provider", "bitbucket", "X-Hub-Signature-256", "sha256=" + sign("x"), 404},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set(tt.header, tt.value)
		}
		err := CheckHeader(tt.provider, h)
		var e *Error
		switch {
		case tt.status == 0 && err != nil:
			t.Errorf("%s: %v, want ok", tt.name, err)
		case tt.status != 0 && (!errors.As(err, &e) || e.Status != tt.status):
			t.Errorf("%s: %v, want status %d", tt.name, err, tt.status)
		}
	}
}

func TestReplaysRemembered(t *testing.T) {
	r := NewReplays(time.Hour, 3)
	now := time.Now()
	if r.Seen(GitHub, []byte("a"), now) {
		t.Fatal("a first delivery seen as a replay")
	}
	if !r.Seen(GitHub, []byte("a"), now.Add(time.Minute)) {
		t.Error("a replay within the hour not seen")
	}
	if r.Seen(GitLab, []byte("a"), now) {
		t.Error("the same body from another provider seen as a replay")
	}
	if r.Seen(GitHub, []byte("a"), now.Add(2*time.Hour)) {
		t.Error("a delivery older than the ttl still remembered")
	}
	// Bounded: many deliveries keep at most max.
	for i := range 1000 {
		r.Seen(GitHub, []byte{byte(i), byte(i >> 8)}, now.Add(3*time.Hour))
	}
	r.mu.Lock()
	n, m := len(r.order), len(r.seen)
	r.mu.Unlock()
	if n > 3 || m > 3 {
		t.Errorf("remembers %d/%d deliveries, want ≤ 3", n, m)
	}
}
