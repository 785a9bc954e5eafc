package activity

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A student's computation may be invisible to the Jupyter server (a script
// started from a terminal, a process a cell left running, a kernel whose
// busy status the server missed), yet the container's CPU time shows it.

// CPUSample is a container's total CPU time, and when it was read.
type CPUSample struct {
	// Used is the CPU time the container's processes used since it started.
	Used time.Duration `json:"used_ns"`
	// At is when it was read (the real clock: a rate needs real time).
	At time.Time `json:"at"`
	// ViaEngine says the engine was asked (one engine call), not the
	// container's cgroup on this host.
	ViaEngine bool `json:"via_engine,omitempty"`
}

// CPUReader reads a container's CPU time. ID is the engine's full container
// ID. Implementations say in their doc where the figure comes from.
type CPUReader interface {
	CPUTime(ctx context.Context, id string) (time.Duration, error)
}

// ErrNoCgroup is returned by Cgroup when no cgroup of the container is found
// under its root: the engine runs elsewhere (another host, a VM), or in
// another cgroup namespace.
var ErrNoCgroup = errors.New("no cgroup for the container")

// Cgroup reads CPU time from the container's cgroup files, which costs no
// engine call: usage_usec of cgroup v2's cpu.stat, or cgroup v1's
// cpuacct.usage (nanoseconds). It looks where Docker's two cgroup drivers
// put a container (systemd: system.slice/docker-ID.scope; cgroupfs:
// docker/ID), and podman's, under Root, then under Root's cpuacct
// hierarchies for v1.
type Cgroup struct {
	// Root is the cgroup mount, /sys/fs/cgroup when empty.
	Root string
}

// cgroupDirs are a container's cgroup directories relative to a hierarchy:
// Docker's systemd and cgroupfs drivers, then podman's (rootful).
func cgroupDirs(id string) []string {
	return []string{"system.slice/docker-" + id + ".scope", "docker/" + id,
		"machine.slice/libpod-" + id + ".scope", "libpod_parent/libpod-" + id}
}

// CPUTime implements CPUReader.
func (c Cgroup) CPUTime(_ context.Context, id string) (time.Duration, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return 0, fmt.Errorf("cgroup of container %q: not a container ID", id)
	}
	root := c.Root
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	for _, d := range cgroupDirs(id) {
		b, err := os.ReadFile(filepath.Join(root, d, "cpu.stat"))
		if err == nil {
			return parseCPUStat(b)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("cgroup of container %s: %w", id, err)
		}
	}
	for _, h := range []string{"cpuacct", "cpu,cpuacct"} {
		for _, d := range cgroupDirs(id) {
			b, err := os.ReadFile(filepath.Join(root, h, d, "cpuacct.usage"))
			if err == nil {
				ns, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("cgroup of container %s: cpuacct.usage: %w", id, err)
				}
				return time.Duration(ns), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return 0, fmt.Errorf("cgroup of container %s: %w", id, err)
			}
		}
	}
	return 0, fmt.Errorf("container %s under %s: %w", id, root, ErrNoCgroup)
}

// parseCPUStat reads usage_usec from a cgroup v2 cpu.stat.
func parseCPUStat(b []byte) (time.Duration, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == "usage_usec" {
			us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cpu.stat: usage_usec %q: %w", v, err)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, errors.New("cpu.stat: no usage_usec")
}

// LocalFirst reads a container's cgroup when it is on this host and asks
// the engine otherwise. An engine read costs one engine call per container,
// so each sample says where it came from, and a pass counts those calls
// apart from its constant ones.
type LocalFirst struct {
	Local  CPUReader // nil: never look on this host
	Engine CPUReader // nil: no fallback
}

// Read returns the container's CPU time and whether the engine was asked.
func (l *LocalFirst) Read(ctx context.Context, id string) (used time.Duration, viaEngine bool, err error) {
	if l.Local != nil {
		d, err := l.Local.CPUTime(ctx, id)
		if err == nil || !errors.Is(err, ErrNoCgroup) || l.Engine == nil {
			return d, false, err
		}
	}
	if l.Engine == nil {
		return 0, false, fmt.Errorf("container %s: %w, and no engine to ask", id, ErrNoCgroup)
	}
	d, err := l.Engine.CPUTime(ctx, id)
	return d, true, err
}
