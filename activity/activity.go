// Package activity reads whether student servers are in use, from each
// Jupyter server's REST API (GET {base}api/kernels?no_track_activity=1:
// each kernel's last_activity and execution_state; then
// {base}api/terminals?no_track_activity=1: each terminal's last_activity,
// so that a student working in a terminal only is not taken for idle).
//
// The probe must not count as activity. Against jupyter_server
// 1.23 and notebook 6.4 (see internal/jupytertest and this package's
// real-server tests): every authenticated API GET, /api/kernels included,
// moves the server's global last_activity (the one /api/status reports and
// Jupyter's own culler reads) unless it carries no_track_activity=1; no REST
// read moves a kernel's own last_activity or execution_state. So the probe
// asks with no_track_activity=1, which leaves both untouched, and decides
// from the per-kernel fields only.
//
// Kernel states: only "busy" is busy. A kernel listed "starting" (a new one,
// or one no client ever connected to: the listed state can stay "starting"
// for good) is activity at its last_activity — its creation — and no more,
// so a server with only starting kernels becomes idle once that is old
// enough; likewise "restarting", "dead" and any other state. (A kernel's
// last_activity moves once more when it has come up and announces itself.)
// Terminals have no busy state: their last_activity moves with their input
// and output. A server without terminals support answers 404 there, which
// means no terminal.
//
// The listed state can be wrong (missed status messages; in jupyter_server
// 1.x and Notebook 6.x a new websocket's kernel_info "nudge" reply can
// overwrite "busy" with "idle"), and a student reading a notebook or
// waiting on a silent computation moves no timestamp at all. So more
// signals hold a server (see Result.Holds): open websockets (each kernel's
// "connections", counted by the server and dropped after its ping timeout;
// /api/status's "connections" is their sum, so it is not read), a kernel
// remembered busy that has sent nothing since (Memory, kept across passes
// and restarts), the container's CPU use since the last look (CPUReader),
// and what the students' front door saw (Traffic: websockets open through
// it hold the server, its last request counts as activity).
package activity

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Target is one running server to probe.
type Target struct {
	// ID keys the result (the container ID).
	ID string
	// CPUID is the container whose CPU time is read, when not ID (on
	// Swarm, ID is a service and CPUID its task's container).
	CPUID string
	// URL is the server's base URL, ending in "/".
	URL string
	// Token is sent as "Authorization: token X" when not empty.
	Token string
	// StartedAt is when the container started: a server without kernels
	// has been idle since then, and one that does not answer yet is only
	// starting while it is recent.
	StartedAt time.Time
	// HandedOut is when the server was last given to its student (a
	// spawn; zero if unknown): it was in use then, so it has been idle
	// since then at most, however long its start took.
	HandedOut time.Time
}

// State says how much a probe could tell.
type State string

// Probe outcomes.
const (
	// Answered: the server listed its kernels; Busy and LastActivity hold.
	Answered State = "answered"
	// Starting: the server did not answer, but its container started
	// within the grace period. Not idle.
	Starting State = "starting"
	// Unreachable: no answer at two looks, after the grace period. Counted
	// as idle since the container started (LastActivity).
	Unreachable State = "unreachable"
	// Unknown: the server answered but not with its kernels (a refused
	// token, an error status). Nothing can be concluded: not idle.
	Unknown State = "unknown"
)

// Result is what a probe learnt about one server.
type Result struct {
	State State `json:"state"`
	// Busy is true when some kernel is executing.
	Busy bool `json:"busy,omitempty"`
	// Kernels is the number of kernels.
	Kernels int `json:"kernels"`
	// Starting is how many of them are listed "starting" (counted as
	// activity at their creation, not as busy).
	Starting int `json:"starting,omitempty"`
	// Terminals is the number of terminals (not read when a kernel is
	// busy: that settles it).
	Terminals int `json:"terminals,omitempty"`
	// LastActivity is the latest kernel or terminal activity, or the
	// container's start when there is neither (or no answer, once
	// Unreachable).
	LastActivity time.Time `json:"last_activity,omitzero"`
	// Err says why the server could not be read.
	Err string `json:"error,omitempty"`

	// Connections is the number of open kernel websockets (browser tabs
	// or other clients attached to a kernel).
	Connections int `json:"connections,omitempty"`
	// KernelStates is each kernel as listed, for Memory.
	KernelStates []KernelState `json:"-"`
	// SeenBusy is set by Memory.Observe: the last look that saw busy a
	// kernel that has sent no message since (and is not listed busy now).
	SeenBusy time.Time `json:"seen_busy,omitzero"`
	// StartedAt is the container's start, from the target.
	StartedAt time.Time `json:"-"`
	// CPUSample is the container's CPU time at this probe, when read.
	CPUSample *CPUSample `json:"-"`
	// CPU is the container's CPU use since the last look (set by
	// Memory.Observe); nil when it could not be read.
	CPU *CPUUse `json:"cpu,omitempty"`
	// CPUErr says why the CPU time could not be read.
	CPUErr string `json:"cpu_error,omitempty"`
	// CPUEngineCall says reading the CPU time cost an engine call.
	CPUEngineCall bool `json:"-"`
	// FrontDoor is what the students' front door saw of the server, when
	// it runs one and saw anything (set by the container pass).
	FrontDoor *Traffic `json:"front_door,omitempty"`
}

// KernelState is one kernel as the server listed it.
type KernelState struct {
	ID             string
	ExecutionState string
	LastActivity   time.Time
	Connections    int
}

// Idle reports whether the server has been idle for at least d at now:
// nothing holds it (Holds) and its last activity, the front door's last
// request included (Last), is that old. Only Answered and Unreachable
// servers can be idle.
func (r Result) Idle(now time.Time, d time.Duration) bool {
	if len(r.Holds(now)) > 0 || (r.State != Answered && r.State != Unreachable) {
		return false
	}
	last := r.Last()
	return !last.IsZero() && now.Sub(last) >= d
}

// Prober probes servers. Its fields may be changed before the first Probe.
type Prober struct {
	// Client makes the requests; each one is also bounded by Timeout.
	Client *http.Client
	// Concurrency bounds the probes in flight.
	Concurrency int
	// Timeout bounds one request.
	Timeout time.Duration
	// Grace is how long after its start a server may fail to answer and
	// still be only starting.
	Grace time.Duration
	// SecondLook is how long to wait before looking again at a server that
	// did not answer.
	SecondLook time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// CPU reads each container's CPU time, also when its server does not
	// answer; nil reads none.
	CPU *LocalFirst
	// CPUConcurrency bounds the CPU reads in flight, apart from the
	// probes: an engine answers a one-shot stats call at its next
	// sampling tick (about a second), whatever the load.
	CPUConcurrency int
}

// New returns a Prober with defaults for a real site.
func New() *Prober {
	return &Prober{Client: &http.Client{}, Concurrency: 8, CPUConcurrency: 32, Timeout: 5 * time.Second,
		Grace: 2 * time.Minute, SecondLook: 3 * time.Second}
}

// Probe probes every target, at most Concurrency at once, and returns one
// Result per target ID. It never fails as a whole: what could not be read
// is in each Result.
func (p *Prober) Probe(ctx context.Context, targets []Target) map[string]Result {
	out := make(map[string]Result, len(targets))
	var mu sync.Mutex
	sem := make(chan struct{}, max(p.Concurrency, 1))
	cpuSem := make(chan struct{}, max(p.CPUConcurrency, 1))
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				mu.Lock()
				out[t.ID] = Result{State: Unknown, Err: ctx.Err().Error()}
				mu.Unlock()
				return
			}
			r := p.one(ctx, t)
			<-sem
			r.StartedAt = t.StartedAt
			// Apart from the HTTP probes, so that slow engine reads
			// (the engine answers a stats call at its next sampling
			// tick) do not hold back the probes.
			if p.CPU != nil {
				select {
				case cpuSem <- struct{}{}:
					used, viaEngine, err := p.CPU.Read(ctx, cmp.Or(t.CPUID, t.ID))
					<-cpuSem
					r.CPUEngineCall = viaEngine
					if err != nil {
						r.CPUErr = err.Error()
					} else {
						r.CPUSample = &CPUSample{Used: used, At: time.Now(), ViaEngine: viaEngine}
					}
				case <-ctx.Done():
					r.CPUErr = ctx.Err().Error()
				}
			}
			mu.Lock()
			out[t.ID] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (p *Prober) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// errNoAnswer marks transport failures (nothing listening, timeout), as
// opposed to a server that answered something unexpected.
var errNoAnswer = errors.New("no answer")

func (p *Prober) one(ctx context.Context, t Target) Result {
	r, err := p.kernels(ctx, t)
	if err == nil || !errors.Is(err, errNoAnswer) {
		return r
	}
	if !t.StartedAt.IsZero() && p.now().Sub(t.StartedAt) < p.Grace {
		return Result{State: Starting, Err: err.Error()}
	}
	// A second look, so that one lost request does not make a server idle.
	timer := time.NewTimer(p.SecondLook)
	select {
	case <-ctx.Done():
		timer.Stop()
		return Result{State: Unknown, Err: ctx.Err().Error()}
	case <-timer.C:
	}
	r, err = p.kernels(ctx, t)
	if err == nil || !errors.Is(err, errNoAnswer) {
		return r
	}
	return Result{State: Unreachable, LastActivity: t.StartedAt, Err: err.Error()}
}

// KernelsPath and TerminalsPath are what the probe requests, relative to a
// server's base URL. no_track_activity=1 keeps the requests out of the
// server's global last_activity, so the probe does not keep Jupyter's own
// idle culling (or anyone reading /api/status) from seeing an idle server.
const (
	KernelsPath   = "api/kernels?no_track_activity=1"
	TerminalsPath = "api/terminals?no_track_activity=1"
)

// kernel is one entry of GET /api/kernels. Timestamps are read as strings
// and parsed by parseTime, which accepts more than encoding/json's strict
// RFC 3339 (Python's isoformat variants).
type kernel struct {
	ID             string `json:"id"`
	LastActivity   string `json:"last_activity"`
	ExecutionState string `json:"execution_state"`
	Connections    int    `json:"connections"`
}

// terminal is one entry of GET /api/terminals.
type terminal struct {
	Name         string `json:"name"`
	LastActivity string `json:"last_activity"`
}

// timeLayouts are the timestamp forms accepted, tried in order: RFC 3339
// with optional fraction (what jupyter_server and notebook 6 send: UTC with
// "Z", microseconds left out when zero), then Python isoformat variants
// without a zone (naive UTC, as older servers wrote) or with a space.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// parseTime parses a Jupyter timestamp; one without a zone is UTC.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("no timestamp")
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unreadable timestamp %q", s)
}

// errNotFound marks a 404 answer (terminals not enabled on the server).
var errNotFound = errors.New("not found")

// get reads {base}path once into out. Transport failures wrap errNoAnswer,
// a 404 wraps errNotFound.
func (p *Prober) get(ctx context.Context, t Target, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	url := t.URL + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	if t.Token != "" {
		req.Header.Set("Authorization", "token "+t.Token)
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w: %v", url, errNoAnswer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("probe %s: status %s: %w", url, resp.Status, errNotFound)
		}
		return fmt.Errorf("probe %s: status %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out); err != nil {
		return fmt.Errorf("probe %s: read answer: %w", url, err)
	}
	return nil
}

// kernels reads the server's kernels, then its terminals, once each.
func (p *Prober) kernels(ctx context.Context, t Target) (Result, error) {
	unknown := func(err error) (Result, error) { return Result{State: Unknown, Err: err.Error()}, err }
	var ks []kernel
	if err := p.get(ctx, t, KernelsPath, &ks); err != nil {
		return unknown(err)
	}
	r := Result{State: Answered, Kernels: len(ks)}
	// The kernels' (and terminals') last_activity say when the server was
	// last used (bounded by its start, at the end).
	for _, k := range ks {
		// A kernel whose activity cannot be read could be the active one:
		// nothing can be concluded about the server.
		at, err := parseTime(k.LastActivity)
		if err != nil {
			return unknown(fmt.Errorf("probe %s: kernel %s: last_activity: %w", t.URL, k.ID, err))
		}
		switch k.ExecutionState {
		case "busy":
			r.Busy = true
		case "starting":
			r.Starting++
		}
		r.Connections += max(k.Connections, 0)
		r.KernelStates = append(r.KernelStates, KernelState{ID: k.ID, ExecutionState: k.ExecutionState, LastActivity: at, Connections: k.Connections})
		if at.After(r.LastActivity) {
			r.LastActivity = at
		}
	}
	// A busy kernel settles it; otherwise a terminal may be in use.
	if !r.Busy {
		var ts []terminal
		err := p.get(ctx, t, TerminalsPath, &ts)
		if err != nil && !errors.Is(err, errNotFound) { // 404: terminals disabled
			// Flattened: a server that answered a moment ago is not
			// down, so no failure here may lead to Unreachable (idle).
			return unknown(errors.New(err.Error()))
		}
		r.Terminals = len(ts)
		for _, tm := range ts {
			at, err := parseTime(tm.LastActivity)
			if err != nil {
				return unknown(fmt.Errorf("probe %s: terminal %s: last_activity: %w", t.URL, tm.Name, err))
			}
			if at.After(r.LastActivity) {
				r.LastActivity = at
			}
		}
	}
	// A server is not idle for longer than it has run: with no kernel and
	// no terminal it was last used when it started, and a timestamp older
	// than its start (a kernel's clock, a server that reports what it had
	// before a restart) says no more than that. Nor for longer than since
	// its student was handed it.
	if since := latest(t.StartedAt, t.HandedOut); r.LastActivity.Before(since) {
		r.LastActivity = since
	}
	return r, nil
}

// latest returns the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
