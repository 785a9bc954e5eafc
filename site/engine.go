package site

import (
	"context"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/registryauth"
	"github.com/nbhosting/nbh-sync/manifest"
)

// containersOf returns the container manager of the engine cfg names: the
// local engine's, or — for engine.kind: swarm — one over the Swarm manager
// of the environment (DOCKER_HOST or the socket), made from the first swarm
// config seen (changing it takes a restart, as for the builder). Both share
// the spawn/pass locks and every setting (site name, tokens, timeouts).
func (s *Site) containersOf(cfg *manifest.Config) (*containers.Manager, error) {
	if cfg == nil || !cfg.Engine.Swarm() {
		return s.ctrs, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.swarm == nil {
		eng := s.opts.SwarmEngine
		if eng == nil {
			sw, err := containers.DialSwarm(cfg.Engine.Registry, cfg.Engine.Network)
			if err != nil {
				return nil, err
			}
			sw.Auth = encodedAuth(cfg.Engine)
			eng = sw
			s.closers = append(s.closers, sw)
		}
		s.swarm = s.ctrs.Over(eng)
		s.swarmProber = newProber(eng)
	}
	return s.swarm, nil
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
