package manifest

import (
	"slices"
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
