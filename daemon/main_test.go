package daemon

import (
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
)

// TestMain removes the nbh-sync the process tests built.
func TestMain(m *testing.M) { testenv.Main(m) }
