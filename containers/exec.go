package containers

import (
	"context"
	"errors"
	"fmt"
)

// Exec is a command to run in a running container, as Manager.Exec runs it.
type Exec struct {
	Cmd []string
	// User runs it (a uid, say); "" means the container's user.
	User string
	// Env is added to the container's environment (KEY=VALUE).
	Env []string
	// Dir is its working directory; "" means the container's.
	Dir string
	// Limit bounds the standard output kept (bytes); 0 means 16 MiB.
	// More fails with ErrOutputTooLarge.
	Limit int64
}

// ExitError is a command that ran and exited with a status other than 0.
type ExitError struct {
	Code int
	// Stderr is the tail of its standard error.
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("exit status %d: %s", e.Code, e.Stderr)
}

var (
	// ErrOutputTooLarge: a command wrote more than its Exec.Limit.
	ErrOutputTooLarge = errors.New("output too large")
	// ErrExecUnsupported: the engine cannot run a command in a container
	// (a Swarm service's task runs on another node).
	ErrExecUnsupported = errors.New("the engine cannot run commands in containers")
)

// execer is an Engine that can run a command in a running container: the
// Docker engine, not a Swarm manager (its tasks run on other nodes).
type execer interface {
	// Exec runs x in container id, waits for it and returns its standard
	// output; *ExitError when it exits with a status other than 0.
	Exec(ctx context.Context, id string, x Exec) ([]byte, error)
}

// Exec runs x in the running container id and returns its standard output.
func (m *Manager) Exec(ctx context.Context, id string, x Exec) ([]byte, error) {
	e, ok := m.eng.(execer)
	if !ok {
		return nil, ErrExecUnsupported
	}
	if x.Limit <= 0 {
		x.Limit = 16 << 20
	}
	return e.Exec(ctx, id, x)
}
