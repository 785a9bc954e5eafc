package api

// UsageDay is one course's usage on one day (package usage keeps them).
type UsageDay struct {
	Day    string `json:"day"`
	Course string `json:"course"`
	// Students counts the distinct students who had a session, opened a
	// notebook or ran a kernel that day.
	Students  int `json:"students"`
	Sessions  int `json:"sessions"`
	Notebooks int `json:"notebooks"`
	// KernelHours sums, over the container passes, each server's kernels
	// times the time since the previous pass.
	KernelHours float64 `json:"kernel_hours"`
	PeakServers int     `json:"peak_servers"`
	// Servers is the peak of concurrent servers in each quarter hour of
	// the day (96 slots; empty when none ran).
	Servers  []int   `json:"servers,omitempty"`
	CPUHours float64 `json:"cpu_hours"`
	// MemPeakBytes is the largest sum of the course's servers' memory at
	// one pass.
	MemPeakBytes int64 `json:"mem_peak_bytes"`
	// DiskBytes is the size of the course's workspaces at the day's last
	// look, Top the largest of them (only for a caller with the API token).
	DiskBytes int64          `json:"disk_bytes"`
	Top       []StudentBytes `json:"top,omitempty"`
}

// StudentBytes is one student's workspace size in a course.
type StudentBytes struct {
	Student string `json:"student"`
	Bytes   int64  `json:"bytes"`
}

// Usage is the answer of GET /api/usage?course=&days=: the days with use,
// oldest first, and each course's distinct students over the whole span
// (the union of the days', not their sum).
type Usage struct {
	From     string         `json:"from"`
	To       string         `json:"to"`
	Days     []UsageDay     `json:"days"`
	Students map[string]int `json:"students"`
}
