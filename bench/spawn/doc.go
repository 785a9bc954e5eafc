// Package spawn holds a benchmark: nbh-sync's Spawn of a new container until
// its server answers, side by side with the engine's own `docker run -d` of
// the same image plus the same readiness wait. See README.md.
package spawn
