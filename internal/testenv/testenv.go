// Package testenv gives tests the real parts they run against — the Docker
// engine, the git command for fixtures — with one rule for when a part is
// missing: skip, unless the environment requires it (CI), then fail.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// RequireDockerEnv makes a missing Docker engine fail tests instead of
// skipping them (CI sets it).
const RequireDockerEnv = "NBH_REQUIRE_DOCKER"

// EngineTimeout bounds a test's first call to the engine (a ping, a
// listing). A missing engine fails at once (nothing listens on the
// socket); a busy one — podman on a loaded machine, many test binaries at
// once — can take many seconds to answer, and is waited for.
const EngineTimeout = time.Minute

// RequireDocker returns a client of the real engine (DOCKER_HOST or the
// local socket, API version negotiated), closed at cleanup. Without an
// engine, or under -short, the test is skipped — or fails when
// NBH_REQUIRE_DOCKER=1.
func RequireDocker(t testing.TB, opts ...client.Opt) *client.Client {
	t.Helper()
	return RequireDockerFor(t, RequireDockerEnv, opts...)
}

// RequireDockerFor is RequireDocker for a test that another part also
// requires: it fails instead of skipping when NBH_REQUIRE_DOCKER=1 or
// env=1 (e.g. NBH_REQUIRE_JUPYTER for the real-Jupyter tests).
func RequireDockerFor(t testing.TB, env string, opts ...client.Opt) *client.Client {
	t.Helper()
	fail := t.Skipf
	if os.Getenv(RequireDockerEnv) == "1" || os.Getenv(env) == "1" {
		fail = t.Fatalf
	}
	if testing.Short() {
		fail("integration test on the Docker engine: -short")
	}
	cli, err := client.NewClientWithOpts(append([]client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}, opts...)...)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), EngineTimeout)
		defer cancel()
		_, err = cli.Ping(ctx)
	}
	if err != nil {
		fail("Docker engine unreachable (%s=1 makes this fail): %v", RequireDockerEnv, err)
	}
	t.Cleanup(func() { cli.Close() })
	if os.Getenv(RequirePodmanEnv) == "1" {
		// podman's version call asks its runtime too: slow on a busy
		// machine, where a ping still answers at once.
		ctx, cancel := context.WithTimeout(context.Background(), EngineTimeout)
		defer cancel()
		if ok, err := IsPodman(ctx, cli); err != nil || !ok {
			t.Fatalf("%s=1 but the engine at %s is not podman (%v)", RequirePodmanEnv, cli.DaemonHost(), err)
		}
	}
	return cli
}

// RequirePodmanEnv, set to 1 (by make test-podman), makes every engine
// test fail unless the engine it reaches is podman: a run meant for
// podman cannot pass on Docker by mistake.
const RequirePodmanEnv = "NBH_REQUIRE_PODMAN"

// IsPodman reports whether cli talks to podman's Docker-compatible API.
func IsPodman(ctx context.Context, cli *client.Client) (bool, error) {
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		return false, err
	}
	for _, c := range v.Components {
		if strings.Contains(c.Name, "Podman") {
			return true, nil
		}
	}
	return false, nil
}

// GitEnv isolates the git command from the user's and the system's
// configuration and names a fixed author.
var GitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
	"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org",
}

// Git runs the git command in dir, to make fixtures, and returns its
// trimmed output; it fails the test on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), GitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// FreePort returns a TCP port free on 127.0.0.1 right now (a later
// listener may still race for it).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
