package manifest

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Engine says where student containers run: on the local engine (Docker or
// podman's Docker-compatible API, the default) or on a Docker Swarm cluster,
// one service per student, images served by a registry every node can pull
// from.
type Engine struct {
	// Kind is "local" (the default) or "swarm".
	Kind string `json:"kind,omitempty"`
	// Registry is host[:port] of the registry new builds are pushed to
	// (swarm only); services are created from registry/image@digest.
	Registry string `json:"registry,omitempty"`
	// Network is an attachable overlay network every student service
	// joins (swarm only; optional).
	Network string `json:"network,omitempty"`
	// Adopt, true by default, takes as the site's the containers named
	// COURSE-x-STUDENT, of a course the site has or had, that carry none of
	// nbh-sync's labels: nbhosting made them. false leaves every container
	// without them alone — on an engine shared with another tool that
	// names its containers alike, or once nbhosting's are gone.
	Adopt *bool `json:"adopt,omitempty"`
	// RegistryAuthFile is the absolute path, on the daemon's host, of the
	// registry's credentials (a docker config.json, mode 0600; package
	// registryauth): builds are pushed with them and services carry them,
	// so that nodes pull without a login of their own. Not in the config
	// repo: a secret does not belong in git.
	RegistryAuthFile string `json:"registry-auth-file,omitempty"`
}

// Adopts reports whether the site adopts unlabelled nbhosting containers
// (Adopt unset or true).
func (e Engine) Adopts() bool { return e.Adopt == nil || *e.Adopt }

// The kinds of engine.
const (
	EngineLocal = "local"
	EngineSwarm = "swarm"
)

// EngineKinds are the values engine.kind accepts. Package containers
// registers how to open each (containers.RegisterKind; a test there checks
// that every kind listed is), and a new kind is added in both places, with
// its settings' checks in validator.engine.
var EngineKinds = []string{EngineLocal, EngineSwarm}

// Swarm reports whether student containers run as Swarm services.
func (e Engine) Swarm() bool { return e.Kind == EngineSwarm }

// SwarmDefaultCommand is DefaultCommand for a swarm site: the host port
// changes at every start there, so the server's URL prefix is the stable
// {prefix} instead of /{port}/.
var SwarmDefaultCommand = []string{"start-in-dir-as-uid.sh", "/home/jovyan", "{uid}", "jupyter", "lab",
	"--ip=0.0.0.0", "--no-browser", "--ServerApp.base_url={prefix}", "--ServerApp.root_dir=/home/jovyan/work"}

var (
	// registryHost is host[:port], a registry reference's first part.
	registryHost = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$`)
	// constraint is a Swarm placement constraint: attribute == or != value.
	constraint = regexp.MustCompile(`^[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+$`)
	// networkName is a Docker network name.
	networkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

func (v *validator) engine(p string, e Engine) {
	switch e.Kind {
	case "", EngineLocal:
		if e.Registry != "" {
			v.errorf(p+".registry", "only used with kind: swarm (the local engine serves its own images)")
		}
		if e.Network != "" {
			v.errorf(p+".network", "only used with kind: swarm")
		}
		if e.RegistryAuthFile != "" {
			v.errorf(p+".registry-auth-file", "only used with kind: swarm")
		}
	case EngineSwarm:
		switch {
		case e.Registry == "":
			v.errorf(p+".registry", "missing: swarm nodes pull images from a registry; give its host[:port], e.g. registry.example.org:5000")
		case !registryHost.MatchString(e.Registry):
			v.errorf(p+".registry", "invalid registry %q: want host[:port], without scheme or path", e.Registry)
		}
		if e.Network != "" && !networkName.MatchString(e.Network) {
			v.errorf(p+".network", "invalid network name %q", e.Network)
		}
		if f := e.RegistryAuthFile; f != "" && (!path.IsAbs(f) || path.Clean(f) != f) {
			// The file lives on the daemon's host, outside the config
			// repo; a relative path would depend on the daemon's
			// working directory.
			v.errorf(p+".registry-auth-file", "want an absolute path on the daemon's host, e.g. /etc/nbh-sync/registry/config.json")
		}
	default:
		v.errorf(p+".kind", "unknown engine kind %q (want %s)", e.Kind, strings.Join(EngineKinds, " or "))
	}
}

// constraints checks placement constraints, and that they are only given
// where they mean something.
func (v *validator) constraints(p string, cs []string) {
	for i, c := range cs {
		q := fmt.Sprintf("%s[%d]", p, i)
		if !constraint.MatchString(c) {
			v.errorf(q, "invalid placement constraint %q: want ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE, e.g. node.labels.jupyter==yes", c)
		}
	}
	if len(cs) > 0 && !v.c.Engine.Swarm() {
		v.errorf(p, "placement constraints need engine.kind: swarm")
	}
}

// swarmPort reports {port} in a container setting of a swarm site: there
// the engine picks the host port at every start, so nothing can be made of
// it when the service is created.
func (v *validator) swarmPort(p, s string) {
	if v.c.Engine.Swarm() && slices.Contains(placeholder.FindAllString(s, -1), "{port}") {
		v.errorf(p, "{port} is not known on swarm (the engine picks the host port at each start); use {prefix} for the server's URL prefix, e.g. --ServerApp.base_url={prefix}")
	}
}

// swarmDefaults gives a swarm site the default command that does not
// depend on the host port.
func (c *Config) swarmDefaults() {
	if c.Engine.Swarm() && c.Defaults.Container.Command == nil {
		c.Defaults.Container.Command = SwarmDefaultCommand
	}
}
