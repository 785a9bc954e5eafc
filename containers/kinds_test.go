package containers_test

import (
	"io"
	"testing"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// TestEveryKindRegistered: each engine.kind manifest accepts opens here,
// and its engine reports the capabilities its kind declares (the site
// decides from the declaration what the engine then does: push builds to
// the registry the nodes pull from). Opening connects to nothing.
func TestEveryKindRegistered(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://192.0.2.1:2375") // unreachable: nothing is called
	for _, name := range append([]string{""}, manifest.EngineKinds...) {
		t.Run(name, func(t *testing.T) {
			k, err := containers.LookupKind(name)
			if err != nil {
				t.Fatal(err)
			}
			eng, err := k.Open(manifest.Engine{Kind: name, Registry: "registry.example.org:5000"})
			if err != nil {
				t.Fatal(err)
			}
			if c, ok := eng.(io.Closer); ok {
				t.Cleanup(func() { c.Close() })
			}
			if got := containers.CapabilitiesOf(eng); got != k.Capabilities {
				t.Errorf("engine reports %+v; the kind declares %+v", got, k.Capabilities)
			}
		})
	}
	if _, err := containers.LookupKind("kubernetes"); err == nil {
		t.Error("an unregistered kind was found")
	}
}
