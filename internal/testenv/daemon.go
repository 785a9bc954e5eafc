package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	gobuild "go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonBuild is the one build of nbh-sync per test binary.
var daemonBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// DaemonBinary returns nbh-sync built from ./cmd/nbh-sync, with the race
// detector when the test runs under it. It builds once per test binary,
// on first use (a run of a package's unit tests alone builds nothing);
// Main removes the build.
func DaemonBinary(t testing.TB) string {
	t.Helper()
	b := &daemonBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "nbhtest-bin-")
		if b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "nbh-sync")
		args := []string{"build", "-o", b.bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		// The go command of the toolchain that built this test, on an
		// import path: it works from any package directory of the module.
		cmd := exec.Command(filepath.Join(gobuild.Default.GOROOT, "bin", "go"), append(args, "github.com/nbhosting/nbh-sync/cmd/nbh-sync")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/nbh-sync: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// Main runs the tests of m, removes what DaemonBinary built and exits: a
// test package that starts the daemon calls it from its TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if daemonBuild.dir != "" {
		os.RemoveAll(daemonBuild.dir)
	}
	os.Exit(code)
}

// LogLine is one line the daemon wrote to stderr (its log).
type LogLine struct {
	Run    int       // which start of the process wrote it, from 1
	Read   time.Time // when the test read it
	Raw    string
	Msg    string         // the record's msg
	Fields map[string]any // the JSON record; nil for a line that is not one (a panic, a race report)
}

// Str returns the record's field key when it is a string.
func (l LogLine) Str(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// Time is the time the daemon wrote on the line.
func (l LogLine) Time() time.Time {
	tm, _ := time.Parse(time.RFC3339Nano, l.Str("time"))
	return tm
}

// daemonStopWait is how long the clean-up waits after SIGTERM before it
// kills: the daemon's own grace period, as the tests set it, is shorter.
const daemonStopWait = 15 * time.Second

// Daemon is nbh-sync run as a process by a test, started and stopped as
// the test likes (a restart keeps the log: the lines of all runs are one
// list, each with its run). At the test's end it is stopped (SIGTERM,
// then SIGKILL), the test fails on a data race, a panic or a fatal error
// in the log, and a failed test gets the log's tail in its own log and
// the whole log in an artifact file.
type Daemon struct {
	t       testing.TB
	env     []string
	logFile *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run is over
	state  *os.ProcessState
	runs   int
	lines  []LogLine
	more   chan struct{} // closed and replaced at each new line
}

// NewDaemon prepares a daemon whose every start has the test's
// environment, GitEnv and env. It does not start it.
func NewDaemon(t testing.TB, env ...string) *Daemon {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, env: env, logFile: f, more: make(chan struct{})}
	t.Cleanup(func() {
		d.stop()
		d.checkLog()
		if t.Failed() {
			t.Logf("daemon log (last 100 lines; all in %s):\n%s", keepLog(t, f.Name()), d.Tail(100))
		}
		f.Close()
	})
	return d
}

// Start runs DaemonBinary with args and returns at once; WaitLog and
// WaitReady wait for what shows it ready. The previous run, if any, must
// be over.
func (d *Daemon) Start(args ...string) {
	d.t.Helper()
	bin := DaemonBinary(d.t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), GitEnv...), d.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start daemon: %v", err)
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.runs++
	run := d.runs
	d.cmd, d.exited, d.state = cmd, exited, nil
	d.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			d.add(sc.Text(), run)
		}
		_ = cmd.Wait() // after the last read of the pipe, as Wait closes it
		d.mu.Lock()
		d.state = cmd.ProcessState
		d.mu.Unlock()
		close(exited)
	}()
}

func (d *Daemon) add(raw string, run int) {
	l := LogLine{Run: run, Read: time.Now(), Raw: raw}
	if json.Unmarshal([]byte(raw), &l.Fields) == nil {
		l.Msg = l.Str("msg")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines = append(d.lines, l)
	fmt.Fprintf(d.logFile, "[run %d] %s\n", run, raw)
	close(d.more)
	d.more = make(chan struct{})
}

// Alive reports whether the current run goes on.
func (d *Daemon) Alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Mark is the number of lines read so far: WaitLog(mark, ...) and
// Lines(mark) look only at lines written after it.
func (d *Daemon) Mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

// Lines returns the lines after mark.
func (d *Daemon) Lines(mark int) []LogLine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]LogLine(nil), d.lines[min(mark, len(d.lines)):]...)
}

// Count returns how many lines after mark match.
func (d *Daemon) Count(mark int, match func(LogLine) bool) int {
	n := 0
	for _, l := range d.Lines(mark) {
		if match(l) {
			n++
		}
	}
	return n
}

// NextLog returns the first line after mark that matches, waiting for
// it until ctx ends or the current run is over with no such line.
func (d *Daemon) NextLog(ctx context.Context, mark int, match func(LogLine) bool) (LogLine, error) {
	for {
		d.mu.Lock()
		for ; mark < len(d.lines); mark++ {
			if match(d.lines[mark]) {
				l := d.lines[mark]
				d.mu.Unlock()
				return l, nil
			}
		}
		more, exited := d.more, d.exited
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return LogLine{}, ctx.Err()
		case <-more:
		case <-exited:
			// Lines read before the exit may still be unseen: look once
			// more, and give up only when none came since.
			if d.Mark() == mark {
				return LogLine{}, fmt.Errorf("daemon exited (%v)", d.State())
			}
		}
	}
}

// WaitLog is NextLog bounded by timeout, failing the test, with what,
// when no line comes.
func (d *Daemon) WaitLog(mark int, timeout time.Duration, what string, match func(LogLine) bool) LogLine {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(d.t.Context(), timeout)
	defer cancel()
	l, err := d.NextLog(ctx, mark, match)
	if err != nil {
		if ctx.Err() != nil {
			d.t.Fatalf("timed out after %s waiting for %s in the daemon's log", timeout, what)
		}
		d.t.Fatalf("%v while waiting for %s", err, what)
	}
	return l
}

// WaitReady polls ready as Eventually does, and fails the test at once
// when the daemon exits meanwhile.
func (d *Daemon) WaitReady(timeout time.Duration, what string, ready func() (bool, string)) {
	d.t.Helper()
	Eventually(d.t, timeout, what, func() (bool, string) {
		if !d.Alive() {
			d.t.Fatalf("daemon exited (%v) while waiting for %s:\n%s", d.State(), what, d.Tail(30))
		}
		return ready()
	})
}

// State is the exit state of the last run that ended (nil while it runs).
func (d *Daemon) State() *os.ProcessState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

// Terminate sends SIGTERM and waits up to timeout for the run to end,
// failing the test if it does not; it returns how long the stop took and
// the exit state.
func (d *Daemon) Terminate(timeout time.Duration) (time.Duration, *os.ProcessState) {
	d.t.Helper()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running %s after SIGTERM", timeout)
	}
	return time.Since(start), d.State()
}

// Kill sends SIGKILL and waits for the run to end.
func (d *Daemon) Kill() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// stop ends the current run at the test's end: SIGTERM, so that a race
// build reports what it found on its way out, then SIGKILL.
func (d *Daemon) stop() {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(daemonStopWait):
		d.t.Logf("daemon still running %s after SIGTERM: killed", daemonStopWait)
		d.Kill()
	}
}

// checkLog fails the test on a data race, a panic or a fatal error in
// any run.
func (d *Daemon) checkLog() {
	for _, l := range d.Lines(0) {
		if strings.Contains(l.Raw, "DATA RACE") || strings.HasPrefix(l.Raw, "panic:") || strings.HasPrefix(l.Raw, "fatal error:") {
			d.t.Errorf("daemon run %d: %s", l.Run, l.Raw)
		}
	}
}

// Tail returns the last n lines, each with its run.
func (d *Daemon) Tail(n int) string {
	var b strings.Builder
	for _, l := range d.Lines(max(0, d.Mark()-n)) {
		fmt.Fprintf(&b, "[run %d] %s\n", l.Run, l.Raw)
	}
	return b.String()
}

// keepLog copies a failed test's daemon log out of its temporary
// directory, which the test removes, into $NBH_ARTIFACTS or else a
// directory of the system's, and returns where it is.
func keepLog(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	dir := os.Getenv("NBH_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "nbhtest-daemon-logs")
	}
	_ = os.MkdirAll(dir, 0o755)
	out := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("150405")+".log")
	if os.WriteFile(out, b, 0o644) != nil {
		return path
	}
	return out
}
