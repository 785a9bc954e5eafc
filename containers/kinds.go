package containers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/nbhosting/nbh-sync/manifest"
)

// Capabilities say where an engine differs from the local one in ways the
// code acts on. The zero value is the local engine's (Docker, podman): the
// caller chooses the host port on HostIP before it creates a container, and
// images run where they were built.
type Capabilities struct {
	// PicksHostPort: the engine chooses the host port, and the node, at
	// every start. Spawn then reads port and node back (Container.Port
	// and Host: the server's address is the node's) once the container
	// runs, instead of choosing a port first, and follows a server that
	// moves while it starts. The port is published on every address of
	// the node, so a server is never made without a Jupyter token.
	PicksHostPort bool
	// PullsFromRegistry: the nodes run only images pushed to the site's
	// registry (engine.registry), so builds are pushed there, and pushes
	// of the builds no longer kept are deleted from it.
	PullsFromRegistry bool
}

// capable is an Engine that reports its Capabilities. One that does not
// (a test's fake) is taken for a local engine.
type capable interface {
	Capabilities() Capabilities
}

// CapabilitiesOf returns what eng reports, or the local engine's (the zero
// value) when it reports nothing.
func CapabilitiesOf(eng Engine) Capabilities {
	if c, ok := eng.(capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}

// Capabilities returns those of m's engine.
func (m *Manager) Capabilities() Capabilities { return CapabilitiesOf(m.eng) }

// Kind is a kind of engine student containers run on, as engine.kind names
// it in courses.yaml.
type Kind struct {
	// Capabilities are what every engine of the kind reports: known from
	// the config alone, before an engine is opened (the site decides from
	// them whether builds are pushed).
	Capabilities Capabilities
	// Open connects to an engine of the kind as e, the engine section of
	// courses.yaml, configures it. The engine's credentials and address
	// come from the environment (DOCKER_HOST and the like), not from e.
	// It does no network work: the first engine call does.
	Open func(e manifest.Engine) (Engine, error)
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// RegisterKind makes an engine kind known under name, the value of
// engine.kind that selects it. It panics when name is taken or k cannot
// open an engine: both are programming errors, found at start-up.
func RegisterKind(name string, k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[name]; dup || name == "" || k.Open == nil {
		panic(fmt.Sprintf("containers: engine kind %q registered twice, unnamed, or without Open", name))
	}
	kinds[name] = k
}

// LookupKind returns the engine kind registered under name; "" is the
// local engine (engine.kind's default).
func LookupKind(name string) (Kind, error) {
	name = cmp.Or(name, manifest.EngineLocal)
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	if !ok {
		return Kind{}, fmt.Errorf("unknown engine kind %q (registered: %s)", name, strings.Join(kindNames(), ", "))
	}
	return k, nil
}

// kindNames lists the registered kinds, sorted; kindsMu held.
func kindNames() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// The kinds nbh-sync ships. A new kind registers itself the same way, in
// its own file; manifest's validation of engine.kind (manifest.EngineKinds)
// names it too.
func init() {
	RegisterKind(manifest.EngineLocal, Kind{Capabilities: localCapabilities, Open: openLocal})
	RegisterKind(manifest.EngineSwarm, Kind{Capabilities: swarmCapabilities, Open: openSwarm})
}
