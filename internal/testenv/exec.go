package testenv

import (
	"bytes"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// Exec runs cmd in container id as user, with the container's
// environment, and returns its output (stdout, then stderr). It fails the
// test when the engine cannot run it; cmd's own exit status is not checked.
func Exec(t testing.TB, cli *client.Client, id, user string, cmd ...string) string {
	t.Helper()
	ctx := t.Context()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, User: user, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		t.Fatalf("exec %v: %v", cmd, err)
	}
	return out.String() + errOut.String()
}

// ProcessUIDs lists, as "UID CMDLINE", every process in container id
// (but the lister itself) whose command line, arguments joined by spaces,
// contains pattern.
func ProcessUIDs(t testing.TB, cli *client.Client, id, pattern string) []string {
	t.Helper()
	script := `for p in /proc/[0-9]*; do
  [ "$p" = "/proc/$$" ] && continue
  c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  case $c in *"$1"*) u=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "$p/status"); echo "$u $c";; esac
done`
	var out []string
	for _, line := range strings.Split(Exec(t, cli, id, "0", "sh", "-c", script, "sh", pattern), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}
