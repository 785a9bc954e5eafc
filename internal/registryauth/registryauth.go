// Package registryauth reads the credentials nbh-sync uses with a Swarm
// site's registry: to push builds (the engine's X-Registry-Auth header),
// to let every node pull them (passed with the service, so nodes need no
// login of their own), and to delete old builds through the registry API.
//
// The file is the one `docker login --config DIR REGISTRY` writes
// (DIR/config.json, mode 0600), or the same JSON written by hand:
//
//	{"auths": {"registry.example.org:5000": {"auth": "<base64 of user:password>"}}}
//
// An entry may give "username" and "password" instead of "auth". Only the
// entry of the site's registry is read; credential helpers (credsStore,
// credHelpers) are not run. The file must be readable by its owner only:
// one that group or others can read is refused, as ssh refuses such keys.
//
// Nothing secret leaves this package in a message: errors name the file, a
// line and a key, never a value, and Credentials print as redacted.
package registryauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Credentials are a user and password for one registry.
type Credentials struct {
	Registry string
	User     string
	Password string
}

// String hides the password (and the user, which is half of a guess).
func (c Credentials) String() string { return "credentials for " + c.Registry + " (redacted)" }

// GoString hides them from %#v too.
func (c Credentials) GoString() string { return c.String() }

// LogValue hides them from log/slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Encoded is the value of the engine's X-Registry-Auth header (and of a
// service's EncodedRegistryAuth): base64url of the JSON the engine wants.
func (c Credentials) Encoded() string {
	b, _ := json.Marshal(struct {
		Username      string `json:"username,omitempty"`
		Password      string `json:"password,omitempty"`
		ServerAddress string `json:"serveraddress,omitempty"`
	}{c.User, c.Password, c.Registry})
	return base64.URLEncoding.EncodeToString(b)
}

// Error is a problem with the credentials file, at a line when known. It
// never carries a value from the file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Load reads the credentials of registry (host[:port]) from file.
func Load(file, registry string) (Credentials, error) {
	fail := func(line int, format string, args ...any) (Credentials, error) {
		return Credentials{}, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fail(0, "registry credentials: %v", errors.Unwrap(err))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fail(0, "registry credentials readable by others (mode %04o): chmod 600 %s", fi.Mode().Perm(), file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return fail(0, "registry credentials: %v", errors.Unwrap(err))
	}
	// The decoder's message may quote the text: say only where.
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		line := 0
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			line = 1 + bytes.Count(b[:se.Offset], []byte("\n"))
		}
		return fail(line, "not valid JSON")
	}
	// JSON is YAML: its node tree gives each key its line, which
	// encoding/json does not.
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fail(0, "not valid JSON")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, "want a JSON object with \"auths\"")
	}
	auths, line := child(root, "auths")
	if auths == nil {
		helper := ""
		if k, _ := child(root, "credsStore"); k != nil {
			helper = " (credential helpers are not run: log in with `docker login --config DIR` on a machine without credsStore)"
		}
		return fail(line, "no \"auths\"%s", helper)
	}
	if auths.Kind != yaml.MappingNode {
		return fail(auths.Line, "auths: want an object")
	}
	var entry *yaml.Node
	for i := 0; i+1 < len(auths.Content); i += 2 {
		if host(auths.Content[i].Value) == registry {
			entry = auths.Content[i+1]
		}
	}
	if entry == nil {
		return fail(auths.Line, "auths: no entry for %s (the site's engine.registry)", registry)
	}
	p := "auths." + strconv.Quote(registry)
	if entry.Kind != yaml.MappingNode {
		return fail(entry.Line, "%s: want an object", p)
	}
	c := Credentials{Registry: registry}
	if a, _ := child(entry, "auth"); a != nil {
		dec, err := base64.StdEncoding.DecodeString(a.Value)
		user, pass, ok := strings.Cut(string(dec), ":")
		if err != nil || !ok || user == "" {
			return fail(a.Line, "%s.auth: not the base64 of user:password", p)
		}
		c.User, c.Password = user, pass
	} else {
		u, _ := child(entry, "username")
		pw, _ := child(entry, "password")
		if u == nil || u.Value == "" || pw == nil {
			return fail(entry.Line, "%s: want \"auth\", or \"username\" and \"password\"", p)
		}
		c.User, c.Password = u.Value, pw.Value
	}
	if c.Password == "" {
		return fail(entry.Line, "%s: empty password", p)
	}
	return c, nil
}

// child returns the value of key in a mapping node, and the mapping's line.
func child(m *yaml.Node, key string) (*yaml.Node, int) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], m.Line
		}
	}
	return nil, m.Line
}

// host is a docker config key as host[:port]: `docker login` may record
// https://host:port or host:port/v1/.
func host(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	h, _, _ := strings.Cut(key, "/")
	return h
}

// Anonymous returns the X-Registry-Auth value for a registry without
// authentication: the engine wants the header even then.
func Anonymous() string { return (Credentials{}).Encoded() }

// Redact replaces every appearance of c's password (and of its encoded
// forms) in s: for messages that quote what another program said.
func (c Credentials) Redact(s string) string {
	for _, secret := range []string{c.Password, c.Encoded(), base64.StdEncoding.EncodeToString([]byte(c.User + ":" + c.Password))} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}
