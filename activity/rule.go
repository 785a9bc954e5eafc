package activity

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// DefaultCPUThreshold is the share of one CPU core, averaged since the last
// look, at or above which a container counts as working. An idle Jupyter
// server with idle kernels stays well under 1%; a computation takes a core.
const DefaultCPUThreshold = 0.10

// CPUUse is a container's CPU use over a window that ends at a probe.
type CPUUse struct {
	// Percent is the CPU time used over the window, in % of one core.
	Percent float64 `json:"percent"`
	// Over is the window: since the last look, or since the container
	// started when there was no earlier look.
	Over time.Duration `json:"over_ns"`
	// SinceStart says the window started with the container.
	SinceStart bool `json:"since_start,omitempty"`
	// Above is true when Percent reached the threshold: the container is
	// working, whatever its server says.
	Above bool `json:"above,omitempty"`
}

// Traffic is what the students' front door saw of a server: the proxy
// records it, the rule reads it. Jupyter's own activity says what kernels
// and terminals did; this says a browser is there — an open notebook keeps
// websockets open while nothing runs, and a student reading files makes
// requests no kernel sees.
type Traffic struct {
	// Last is the time of the last request through the front door, or of
	// the last websocket closing.
	Last time.Time `json:"last,omitzero"`
	// Websockets is the number of websockets open through it now.
	Websockets int `json:"websockets"`
}

// TrafficSource gives the front door's traffic of students' servers.
type TrafficSource interface {
	// Traffic returns what the front door saw of a student's server since
	// it started; ok is false when it saw nothing.
	Traffic(course, student string) (t Traffic, ok bool)
}

// String reads "front door: last request 12 s ago, 1 websocket open".
func (t Traffic) String(now time.Time) string {
	var parts []string
	if !t.Last.IsZero() {
		parts = append(parts, "last request "+words(max(0, now.Sub(t.Last)))+" ago")
	}
	if t.Websockets > 0 {
		parts = append(parts, plural(t.Websockets, "websocket")+" open")
	}
	if len(parts) == 0 {
		return "front door: no request"
	}
	return "front door: " + strings.Join(parts, ", ")
}

// Holds says, in words, what keeps the server from being idle at now: a
// busy kernel, open connections, a kernel seen busy and silent since, CPU
// use above the threshold, a websocket open through the front door. Empty
// when nothing does; then only the age of the last activity decides (Idle).
func (r Result) Holds(now time.Time) []string {
	var out []string
	if r.Busy {
		out = append(out, "a kernel is busy")
	}
	if r.Connections > 0 {
		out = append(out, plural(r.Connections, "open connection"))
	}
	if !r.SeenBusy.IsZero() {
		out = append(out, fmt.Sprintf("kernel seen busy at %s, silent since", r.SeenBusy.UTC().Format("15:04 UTC")))
	}
	if r.CPU != nil && r.CPU.Above {
		out = append(out, r.CPU.String())
	}
	if r.FrontDoor != nil && r.FrontDoor.Websockets > 0 {
		out = append(out, r.FrontDoor.String(now))
	}
	return out
}

// Last is the latest sign of use: the last kernel or terminal activity
// (or the container's start, see LastActivity), or the last request
// through the front door when that is later.
func (r Result) Last() time.Time {
	if r.FrontDoor != nil && r.FrontDoor.Last.After(r.LastActivity) {
		return r.FrontDoor.Last
	}
	return r.LastActivity
}

// String reads "37% CPU over the last 5 min".
func (u CPUUse) String() string {
	if u.SinceStart {
		return fmt.Sprintf("%.0f%% CPU since the container started %s ago", u.Percent, words(u.Over))
	}
	return fmt.Sprintf("%.0f%% CPU over the last %s", u.Percent, words(u.Over))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// words writes a duration the way a person would say it: "5 min", "40 s",
// "3 h 20 min".
func words(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(math.Round(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
	default:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
}

// cpuUse is the use between two samples of one container, or since its
// start when prev is nil or does not apply (taken before the start, or with
// more CPU time than now: the container was restarted).
func cpuUse(prev *CPUSample, cur CPUSample, started time.Time, threshold float64) *CPUUse {
	var used, over time.Duration
	sinceStart := false
	switch {
	case prev != nil && prev.At.Before(cur.At) && prev.Used <= cur.Used && (started.IsZero() || prev.At.After(started)):
		used, over = cur.Used-prev.Used, cur.At.Sub(prev.At)
	case !started.IsZero() && started.Before(cur.At):
		used, over, sinceStart = cur.Used, cur.At.Sub(started), true
	default:
		return nil
	}
	pct := 100 * used.Seconds() / over.Seconds()
	return &CPUUse{Percent: pct, Over: over, SinceStart: sinceStart, Above: pct >= 100*threshold}
}
