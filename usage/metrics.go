package usage

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports today's figures of every course as Prometheus gauges,
// read from the store at each scrape. The labels are the course only —
// never a student — so that the series are as many as the courses.
type Collector struct {
	s    *Store
	now  func() time.Time
	desc map[string]*prometheus.Desc
}

// NewCollector returns the collector of s; now is the clock (time.Now when
// nil).
func NewCollector(s *Store, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("nbh_sync_usage_"+name, help+" Today (UTC), per course.", []string{"course"}, nil)
	}
	return &Collector{s: s, now: now, desc: map[string]*prometheus.Desc{
		"students":       d("students", "Distinct students who had a session, opened a notebook or ran a kernel."),
		"sessions":       d("sessions", "Servers handed out (spawns through the API and the front door)."),
		"notebooks":      d("notebooks_opened", "Notebooks opened through the front door."),
		"kernel_hours":   d("kernel_hours", "Kernel hours."),
		"peak_servers":   d("peak_servers", "Peak of concurrent servers."),
		"cpu_hours":      d("cpu_hours", "CPU hours of the servers."),
		"mem_peak_bytes": d("memory_peak_bytes", "Peak of the servers' summed memory."),
		"disk_bytes":     d("disk_bytes", "Size of the workspaces at the last look."),
	}}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.desc {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	today := DayOf(c.now())
	for _, f := range c.s.Query("", today, today) {
		for k, v := range map[string]float64{
			"students": float64(f.Students), "sessions": float64(f.Sessions), "notebooks": float64(f.Notebooks),
			"kernel_hours": f.KernelHours, "peak_servers": float64(f.PeakServers), "cpu_hours": f.CPUHours,
			"mem_peak_bytes": float64(f.MemPeakBytes), "disk_bytes": float64(f.DiskBytes),
		} {
			ch <- prometheus.MustNewConstMetric(c.desc[k], prometheus.GaugeValue, v, f.Course)
		}
	}
}
