// Package e2e holds nbh-sync's end-to-end tests: the daemon as a real
// process (built from ./cmd/nbh-sync) against the real Docker engine, git
// repositories served over HTTP by git http-backend, and a real Jupyter
// server. They carry the build tag e2e and run with `make e2e`; see
// README.md in this folder.
package e2e
