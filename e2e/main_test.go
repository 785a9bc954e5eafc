//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// daemonBin is nbh-sync built from ./cmd/nbh-sync for this run.
var daemonBin string

// TestMain builds the daemon once, with the race detector: a data race in
// the real process prints "WARNING: DATA RACE" to its log, which every
// test checks.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nbhtest-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daemonBin = filepath.Join(dir, "nbh-sync")
	cmd := exec.Command("go", "build", "-race", "-o", daemonBin, "./cmd/nbh-sync")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build nbh-sync: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
