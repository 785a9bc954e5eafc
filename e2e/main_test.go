//go:build e2e

package e2e

import (
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestMain removes the nbh-sync the tests built. `make e2e` runs them
// under the race detector, so testenv.DaemonBinary builds a race-detecting
// daemon: a data race in the real process prints "WARNING: DATA RACE" to
// its log, which fails the test.
func TestMain(m *testing.M) { testenv.Main(m) }
