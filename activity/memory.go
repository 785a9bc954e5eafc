package activity

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/nbhosting/nbh-sync/internal/atomicfile"
)

// Memory is what the probe remembers between looks, for the signals one
// look cannot give: which kernels were seen busy (the server's listed state
// can later turn "idle" when it is not, but the kernel's last_activity
// moves with every message it sends, and finishing a cell sends one), and
// each container's CPU time at the last look. It is kept under
// ROOT/state (rootdir.ActivityMemory), so that a daemon restart forgets nothing.
type Memory struct {
	// Busy maps a container ID to its kernels seen busy, by kernel ID.
	Busy map[string]map[string]BusyKernel `json:"busy_kernels"`
	// CPU maps a container ID to its CPU time at the last look that
	// measured over at least MinCPUWindow (a look sooner does not replace it).
	CPU map[string]CPUSample `json:"cpu"`
	// CPUBefore maps a container ID to the sample CPU replaced: what a look
	// sooner than MinCPUWindow after CPU measures from.
	CPUBefore map[string]CPUSample `json:"cpu_before,omitempty"`
}

// MinCPUWindow is the shortest time CPU use is measured over. Passes can
// come back to back (a webhook, a spawn, the schedule), and over a fraction
// of a second the CPU the probe's own two requests cost the server reads
// as use: measured over a short window, an idle server looks busy.
const MinCPUWindow = 30 * time.Second

// BusyKernel is a kernel seen busy.
type BusyKernel struct {
	// SeenAt is the last look that listed it busy.
	SeenAt time.Time `json:"seen_at"`
	// LastActivity is its last_activity then: a later one means it sent a
	// message since (its cell finished, or printed).
	LastActivity time.Time `json:"last_activity"`
}

// LoadMemory reads the memory at path; a missing file is an empty memory.
// An unreadable one is an error, and the caller decides (a daemon logs it
// and starts afresh: the memory only ever holds servers longer).
func LoadMemory(path string) (*Memory, error) {
	m := &Memory{}
	if path == "" {
		return m, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read activity memory: %w", err)
	}
	if err := json.Unmarshal(b, m); err != nil {
		return &Memory{}, fmt.Errorf("read activity memory %s: %w", path, err)
	}
	return m, nil
}

// Save writes the memory to path atomically, readable by its owner only
// (it names every running container).
func (m *Memory) Save(path string) error {
	if err := atomicfile.WriteJSON(path, m); err != nil {
		return fmt.Errorf("save activity memory: %w", err)
	}
	return nil
}

// Observe brings the memory up to date with one probe round and completes
// the results with what only the memory can tell: SeenBusy (a kernel seen
// busy at an earlier look, listed otherwise now, with no message since) and
// CPU (use since the last look, threshold in shares of one core). A kernel
// is forgotten once it sent a message, is gone or dead; a container once it
// is not in results (stopped or removed). A server that did not answer
// changes nothing of what is remembered of its kernels.
func (m *Memory) Observe(results map[string]Result, now time.Time, threshold float64) {
	if m.Busy == nil {
		m.Busy = map[string]map[string]BusyKernel{}
	}
	if m.CPU == nil {
		m.CPU = map[string]CPUSample{}
	}
	if m.CPUBefore == nil {
		m.CPUBefore = map[string]CPUSample{}
	}
	for id := range m.Busy {
		if _, ok := results[id]; !ok {
			delete(m.Busy, id)
		}
	}
	for id := range m.CPU {
		if _, ok := results[id]; !ok {
			delete(m.CPU, id)
			delete(m.CPUBefore, id)
		}
	}
	for id, r := range results {
		if r.State == Answered {
			r.SeenBusy = time.Time{}
			old, kept := m.Busy[id], map[string]BusyKernel{}
			for _, k := range r.KernelStates {
				prev, had := old[k.ID]
				switch {
				case k.ExecutionState == "busy":
					kept[k.ID] = BusyKernel{SeenAt: now, LastActivity: k.LastActivity}
				case had && k.ExecutionState != "dead" && !k.LastActivity.After(prev.LastActivity):
					kept[k.ID] = prev
					if prev.SeenAt.After(r.SeenBusy) {
						r.SeenBusy = prev.SeenAt
					}
				}
			}
			if len(kept) > 0 {
				m.Busy[id] = kept
			} else {
				delete(m.Busy, id)
			}
		}
		if r.CPUSample != nil {
			r.CPU = m.observeCPU(id, *r.CPUSample, r.StartedAt, threshold)
		}
		results[id] = r
	}
}

// observeCPU measures a container's CPU use at cur over at least
// MinCPUWindow: from the last sample when it is that old, which cur then
// replaces; else from the one before it, kept for that, and cur is not
// remembered. With neither (a second look soon after the first), the use
// is since the container's start, as at a first look.
func (m *Memory) observeCPU(id string, cur CPUSample, started time.Time, threshold float64) *CPUUse {
	last, ok := m.CPU[id]
	if !ok || cur.At.Sub(last.At) >= MinCPUWindow || cur.Used < last.Used || (!started.IsZero() && !last.At.After(started)) {
		// Old enough, or from before a restart: start afresh from cur.
		var prev *CPUSample
		if ok {
			prev = &last
			m.CPUBefore[id] = last
		}
		m.CPU[id] = cur
		return cpuUse(prev, cur, started, threshold)
	}
	var prev *CPUSample
	if before, ok := m.CPUBefore[id]; ok {
		prev = &before
	}
	return cpuUse(prev, cur, started, threshold)
}
