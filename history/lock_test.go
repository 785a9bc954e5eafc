package history

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSecondProcessGetsClearError opens the store here and then in a real
// second process (this test binary re-run), as the CLI would while the
// daemon runs.
func TestSecondProcessGetsClearError(t *testing.T) {
	if path := os.Getenv("NBH_HISTORY_CHILD"); path != "" {
		_, err := Open(path, Options{ReadOnly: true, OpenTimeout: 200 * time.Millisecond})
		if err == nil {
			os.Stdout.WriteString("opened\n")
			os.Exit(0)
		}
		os.Stdout.WriteString(err.Error() + "\n")
		os.Exit(3)
	}
	_, path := open(t, Options{})
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestSecondProcessGetsClearError$")
	cmd.Env = append(os.Environ(), "NBH_HISTORY_CHILD="+path)
	out, err := cmd.Output()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("child: %v, output %q", err, out)
	}
	if !strings.Contains(string(out), ErrLocked.Error()) {
		t.Errorf("child's error = %q", out)
	}
}
