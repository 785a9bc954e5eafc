package registryauth_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/registryauth"
)

const secret = "s3cret-pw"

func TestLoad(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte("nbh:" + secret))
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantErr       string // "" for success
	}{
		{"docker login", `{"auths": {"reg.example.org:5000": {"auth": "` + b64 + `"}}}`, 0o600, ""},
		{"https key", `{"auths": {"https://reg.example.org:5000": {"auth": "` + b64 + `"}}}`, 0o600, ""},
		{"user and password", "{\n  \"auths\": {\n    \"reg.example.org:5000\": {\"username\": \"nbh\", \"password\": \"" + secret + "\"}\n  }\n}\n", 0o400, ""},
		{"readable by the group", `{"auths": {"reg.example.org:5000": {"auth": "` + b64 + `"}}}`, 0o640, "readable by others (mode 0640): chmod 600"},
		{"another registry only", "{\n  \"auths\": {\n    \"other:5000\": {\"auth\": \"" + b64 + "\"}}}", 0o600, ":2: auths: no entry for reg.example.org:5000"},
		{"not base64", "{\"auths\": {\n\"reg.example.org:5000\": {\n\"auth\": \"" + secret + "!\"}}}", 0o600, `:3: auths."reg.example.org:5000".auth: not the base64 of user:password`},
		{"no password", "{\"auths\": {\n\"reg.example.org:5000\": {\"username\": \"nbh\"}}}", 0o600, `:2: auths."reg.example.org:5000": want "auth", or "username" and "password"`},
		{"helper", `{"credsStore": "desktop"}`, 0o600, "credential helpers are not run"},
		{"syntax", "{\"auths\": {\n\"reg.example.org:5000\": {\"password\": \"" + secret + "\" \"x\"}}}", 0o600, ":2: not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(f, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(f, tt.mode); err != nil {
				t.Fatal(err)
			}
			c, err := registryauth.Load(f, "reg.example.org:5000")
			if tt.wantErr == "" {
				if err != nil || c.User != "nbh" || c.Password != secret {
					t.Fatalf("Load: %v", err)
				}
				var dec struct{ Username, Password, ServerAddress string }
				b, _ := base64.URLEncoding.DecodeString(c.Encoded())
				if json.Unmarshal(b, &dec) != nil || dec.Username != "nbh" || dec.Password != secret || dec.ServerAddress != "reg.example.org:5000" {
					t.Errorf("encoded: %s", b)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load: %v, want an error with %q", err, tt.wantErr)
			} else if !strings.HasPrefix(err.Error(), f) {
				t.Errorf("error does not start with the file: %v", err)
			}
			// Nothing secret in any message, however printed.
			var logged strings.Builder
			slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "creds", c, "err", err)
			for _, out := range []string{fmt.Sprint(err), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
				if strings.Contains(out, secret) || strings.Contains(out, b64) {
					t.Errorf("secret in output: %s", out)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	c := registryauth.Credentials{Registry: "r", User: "u", Password: secret}
	if got := c.Redact("auth " + c.Encoded() + " pw " + secret); strings.Contains(got, secret) || strings.Contains(got, c.Encoded()) {
		t.Errorf("Redact: %s", got)
	}
}
