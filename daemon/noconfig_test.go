package daemon

import (
	"path/filepath"
	"testing"
	"time"
)

// A daemon whose first pull finds no valid config (a rejected commit here;
// a fetch that timed out on a slow machine alike) does not wait for ever:
// it watches its local config repo and polls on the default schedule, so
// the first valid commit is applied.
func TestNoConfigAtStartIsRetried(t *testing.T) {
	t.Parallel()
	requireDocker(t)
	dir := t.TempDir()
	cfg := newWorkTree(t, filepath.Join(dir, "config"), "")
	cfg.commit(t, map[string]string{"courses.yaml": "version: 1\ncourses:\n  a:\n    repo: .\n    idel: 1h\n"}, "a typo")
	p := startDaemon(t, "run", "--config", cfg.dir, "--root", filepath.Join(dir, "root"), "--listen", "127.0.0.1:0",
		"--log-format", "json", "--grace", testGrace.String())
	p.WaitLog(0, time.Minute, "the first pass, with no config", func(l logLine) bool { return l.Msg == "pass finished with errors" })
	mark := p.Mark()
	cfg.commit(t, map[string]string{"courses.yaml": "version: 1\ncourses: {}\n"}, "fixed")
	p.WaitLog(mark, time.Minute, "the fixed config applied", func(l logLine) bool { return l.Msg == "config applied" })
}
