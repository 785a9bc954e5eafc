package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a unix socket may have (sun_path).
const maxSocketPath = 104

// ListenSocket listens on the unix socket at path, mode 0600. A socket left
// behind by a daemon that died is replaced; one a live daemon answers on is
// an error.
func ListenSocket(ctx context.Context, path string) (net.Listener, error) {
	if len(path) >= maxSocketPath {
		return nil, fmt.Errorf("API socket %s: path longer than %d bytes", path, maxSocketPath-1)
	}
	if _, err := os.Lstat(path); err == nil {
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("API socket %s: another daemon answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("API socket %s: remove the stale one: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	// The folder (0700) keeps others out until the chmod below.
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("API socket: %w", err)
	}
	return ln, nil
}

// CheckSocket returns nil when the socket at path may be trusted with the
// API token: a socket, owned by the owner of root (the daemon's user),
// that no one else may open. It says what is wrong otherwise;
// fs.ErrNotExist when there is no socket.
func CheckSocket(path, root string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	ri, err := os.Stat(root)
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s is not a socket (%s)", path, fi.Mode().Type())
	}
	sock, okS := fi.Sys().(*syscall.Stat_t)
	dir, okR := ri.Sys().(*syscall.Stat_t)
	if !okS || !okR {
		return errors.New("cannot read file owners on this system")
	}
	if sock.Uid != dir.Uid {
		return fmt.Errorf("%s is owned by uid %d, but %s by uid %d: not the daemon of this root", path, sock.Uid, root, dir.Uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s has mode %s: others may open it", path, fi.Mode().Perm())
	}
	return nil
}
