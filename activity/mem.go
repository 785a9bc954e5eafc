package activity

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemoryBytes reads a container's memory use from its cgroup, as CPUTime
// reads its CPU time (the same directories): cgroup v2's memory.current,
// else v1's memory.usage_in_bytes. It is for usage figures, never for a
// decision: an error wrapping ErrNoCgroup means the engine runs elsewhere.
func (c Cgroup) MemoryBytes(id string) (int64, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return 0, fmt.Errorf("cgroup of container %q: not a container ID", id)
	}
	root := c.Root
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	for _, p := range []string{"", "memory"} {
		for _, d := range cgroupDirs(id) {
			name := "memory.current"
			if p != "" {
				name = "memory.usage_in_bytes"
			}
			b, err := os.ReadFile(filepath.Join(root, p, d, name))
			if err == nil {
				return strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return 0, fmt.Errorf("cgroup of container %s: %w", id, err)
			}
		}
	}
	return 0, fmt.Errorf("container %s under %s: %w", id, root, ErrNoCgroup)
}
