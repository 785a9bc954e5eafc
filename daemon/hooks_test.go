package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/server"
)

// Webhooks are verified by the path's provider only, and a signed
// delivery sent again is refused.
func TestPushProviderAndReplays(t *testing.T) {
	const secret = "HOOKSECRET"
	d := &daemon{secret: []byte(secret), replays: newReplays(), log: slog.New(slog.DiscardHandler)}
	sign := func(body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	hook := func(provider, body string, h map[string]string) error {
		r, _ := http.NewRequestWithContext(t.Context(), "POST", "/hooks/"+provider, strings.NewReader(body))
		for k, v := range h {
			r.Header.Set(k, v)
		}
		_, err := d.push(t.Context(), provider, r.Header, []byte(body))
		return err
	}
	ping := `{"zen":"Keep it logically awesome.","hook_id":1}`
	if err := hook("github", ping, map[string]string{"X-Gitlab-Token": secret, "X-GitHub-Event": "ping"}); err == nil {
		t.Error("a plaintext X-Gitlab-Token was accepted at /hooks/github")
	}
	if err := hook("gitlab", ping, map[string]string{"X-Hub-Signature-256": sign(ping)}); err == nil {
		t.Error("a GitHub signature was accepted at /hooks/gitlab")
	}
	if err := hook("github", ping, map[string]string{"X-Hub-Signature-256": sign(ping), "X-GitHub-Event": "ping", "X-GitHub-Delivery": "1"}); err != nil {
		t.Fatalf("signed ping: %v", err)
	}
	// The same signed body again, even under a new delivery ID (a header
	// no signature covers), is a replay.
	err := hook("github", ping, map[string]string{"X-Hub-Signature-256": sign(ping), "X-GitHub-Event": "ping", "X-GitHub-Delivery": "2"})
	if !errors.Is(err, server.ErrConflict) {
		t.Errorf("replayed ping: %v, want a conflict", err)
	}
	if err := hook("bitbucket", ping, nil); !errors.Is(err, server.ErrUnknownProvider) {
		t.Errorf("unknown provider: %v", err)
	}
}
