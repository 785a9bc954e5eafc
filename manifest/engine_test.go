package manifest

import (
	"slices"
	"strings"
	"testing"
)

// TestSwarmDefaults: a swarm site's courses get the command whose URL
// prefix does not depend on the host port, and their placement constraints
// from defaults unless they set their own; a local site keeps /{port}/.
func TestSwarmDefaults(t *testing.T) {
	tests := []struct {
		name, yaml      string
		wantCmd         []string
		wantConstraints []string
	}{
		{"local", "version: 1\ncourses:\n  a: {repo: /srv/a}\n", DefaultCommand, nil},
		{"swarm", "version: 1\nengine: {kind: swarm, registry: 127.0.0.1:5000}\ndefaults:\n  container: {constraints: [node.role==worker]}\ncourses:\n  a: {repo: /srv/a}\n",
			SwarmDefaultCommand, []string{"node.role==worker"}},
		{"swarm, course's own", "version: 1\nengine: {kind: swarm, registry: reg.example.org}\ndefaults:\n  container: {constraints: [node.role==worker]}\ncourses:\n  a: {repo: /srv/a, container: {command: [x, \"{prefix}\"], constraints: [node.labels.gpu==yes]}}\n",
			[]string{"x", "{prefix}"}, []string{"node.labels.gpu==yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Parse("courses.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			co := c.Courses["a"].Container
			if !slices.Equal(co.Command, tt.wantCmd) {
				t.Errorf("command = %q, want %q", co.Command, tt.wantCmd)
			}
			if !slices.Equal(co.Constraints, tt.wantConstraints) {
				t.Errorf("constraints = %q, want %q", co.Constraints, tt.wantConstraints)
			}
		})
	}
}

// TestRegistryAuthFile: the credentials file is named by an absolute path
// (it lives on the daemon's host, not in the repo), on swarm only; errors
// give the line.
func TestRegistryAuthFile(t *testing.T) {
	tests := []struct{ name, engine, wantErr string }{
		{"absolute", "engine:\n  kind: swarm\n  registry: reg:5000\n  registry-auth-file: /etc/nbh-sync/registry/config.json\n", ""},
		{"relative", "engine:\n  kind: swarm\n  registry: reg:5000\n  registry-auth-file: secrets/config.json\n",
			"courses.yaml:5:3: engine.registry-auth-file: want an absolute path on the daemon's host"},
		{"unclean", "engine:\n  kind: swarm\n  registry: reg:5000\n  registry-auth-file: /etc/../config.json\n",
			"courses.yaml:5:3: engine.registry-auth-file: want an absolute path"},
		{"local engine", "engine:\n  registry-auth-file: /etc/nbh-sync/config.json\n",
			"courses.yaml:3:3: engine.registry-auth-file: only used with kind: swarm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse("courses.yaml", []byte("version: 1\n"+tt.engine+"courses:\n  a: {repo: /srv/a}\n"))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse: %v; want %q", err, tt.wantErr)
			}
		})
	}
}
