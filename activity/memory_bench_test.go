package activity

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// The memory's share of a probe round over 1,000 servers: load, observe,
// save (go test -run XXX -bench Memory ./activity).
func BenchmarkMemory1000(b *testing.B) {
	p := filepath.Join(b.TempDir(), "state", "activity.json")
	now := time.Now()
	res := map[string]Result{}
	for i := range 1000 {
		id := fmt.Sprintf("%064d", i)
		res[id] = Result{State: Answered, Kernels: 1, StartedAt: now.Add(-time.Hour), CPUSample: &CPUSample{Used: time.Second, At: now},
			KernelStates: []KernelState{{ID: fmt.Sprintf("k%035d", i), ExecutionState: "busy", LastActivity: now}}}
	}
	for b.Loop() {
		m, err := LoadMemory(p)
		if err != nil {
			b.Fatal(err)
		}
		m.Observe(res, now, DefaultCPUThreshold)
		if err := m.Save(p); err != nil {
			b.Fatal(err)
		}
	}
}
