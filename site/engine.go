package site

import (
	"github.com/nbhosting/nbh-sync/containers"
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
			eng = sw
			s.closers = append(s.closers, sw)
		}
		s.swarm = s.ctrs.Over(eng)
		s.swarmProber = newProber(eng)
	}
	return s.swarm, nil
}
