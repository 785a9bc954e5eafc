package site

import (
	"cmp"
	"context"
	"io"

	"github.com/nbhosting/nbh-sync/activity"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/registryauth"
	"github.com/nbhosting/nbh-sync/manifest"
)

// kindEngine is the engine of one kind as the site uses it: the manager
// of its containers, and the probe of their servers.
type kindEngine struct {
	ctrs *containers.Manager
	// prober reads a server's CPU time from the engine when it can tell,
	// else from the cgroup of a container on this host (newProber).
	prober *activity.Prober
}

// containersOf returns the container manager of the engine cfg names.
func (s *Site) containersOf(cfg *manifest.Config) (*containers.Manager, error) {
	e, err := s.engineOf(cfg)
	if err != nil {
		return nil, err
	}
	return e.ctrs, nil
}

// engineOf returns the engine of the kind cfg names (engine.kind; the
// local one without a config). Another kind than the local one is the
// engine Options.Engines gives, else the one its registration in package
// containers opens, made from the first config of that kind seen
// (changing it takes a restart, as for the builder). All share the
// spawn/pass locks and every setting (site name, tokens, timeouts).
func (s *Site) engineOf(cfg *manifest.Config) (*kindEngine, error) {
	kind := manifest.EngineLocal
	if cfg != nil {
		kind = cmp.Or(cfg.Engine.Kind, kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.engines[kind]; ok {
		return e, nil
	}
	eng, ok := s.opts.Engines[kind]
	if !ok {
		k, err := containers.LookupKind(kind)
		if err != nil {
			return nil, err
		}
		if eng, err = k.Open(cfg.Engine); err != nil {
			return nil, err
		}
		if c, ok := eng.(io.Closer); ok {
			s.closers = append(s.closers, c)
		}
	}
	e := &kindEngine{ctrs: s.ctrs.Over(eng), prober: newProber(eng)}
	s.engines[kind] = e
	return e, nil
}

// proberOf returns the probe of the engine ctrs manages (one engineOf
// made).
func (s *Site) proberOf(ctrs *containers.Manager) *activity.Prober {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.engines {
		if e.ctrs == ctrs {
			return e.prober
		}
	}
	return s.engines[manifest.EngineLocal].prober
}

// kindOf is the registration of the engine kind cfg names. A kind
// manifest's validation accepts is registered (a test in package
// containers holds them together), so a config in force always has one.
func kindOf(cfg *manifest.Config) containers.Kind {
	k, _ := containers.LookupKind(cfg.Engine.Kind)
	return k
}

// negotiate agrees on the API version with the local engine before a read
// makes its engine calls at once (containers.Docker.Negotiate): one ping
// for all of them. An engine with nothing to negotiate is passed over, and
// so is a failure: each call then says what went wrong.
func (s *Site) negotiate(ctx context.Context) {
	if n, ok := s.opts.ContainerEngine.(interface{ Negotiate(context.Context) error }); ok {
		_ = n.Negotiate(ctx)
	}
}

// registryCredentials returns what reads the credentials of e's registry
// from its file, at each call (the file may change while the daemon runs);
// nil when the registry needs none.
func registryCredentials(e manifest.Engine) func() (registryauth.Credentials, error) {
	if e.RegistryAuthFile == "" {
		return nil
	}
	return func() (registryauth.Credentials, error) { return registryauth.Load(e.RegistryAuthFile, e.Registry) }
}

// encodedAuth is registryCredentials encoded for the engine (pushes and
// services); nil when the registry needs none.
func encodedAuth(e manifest.Engine) func() (string, error) {
	creds := registryCredentials(e)
	if creds == nil {
		return nil
	}
	return func() (string, error) {
		c, err := creds()
		if err != nil {
			return "", err
		}
		return c.Encoded(), nil
	}
}
