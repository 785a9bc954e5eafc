package activity

import (
	"context"
	"time"
)

// Round is one probe round as a container pass makes it: every target
// probed (and its CPU time read, when the Prober has a CPU reader), then
// completed with the memory kept at memFile (none when empty), with CPU use
// compared to threshold (a share of one core; DefaultCPUThreshold when
// zero). It returns the results and the updated memory, which the caller
// saves (Memory.Save) when the round is a pass that acts. An unreadable
// memory is reported in err and replaced by an empty one: the results are
// still complete, they only lack what was remembered.
func (p *Prober) Round(ctx context.Context, targets []Target, memFile string, threshold float64) (map[string]Result, *Memory, error) {
	res := p.Probe(ctx, targets)
	mem, err := LoadMemory(memFile)
	if threshold == 0 {
		threshold = DefaultCPUThreshold
	}
	mem.Observe(res, time.Now(), threshold)
	return res, mem, err
}
