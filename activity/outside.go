package activity

import (
	"sync"
	"time"
)

// Signals is the one hook for activity seen outside a student's server: a
// source (the front door, the API, ...) is given a Signals and calls it;
// the container passes read what all sources said through the Outside that
// implements it, as a TrafficSource. Adding a source is wiring it to the
// site's Outside; nothing between the source and the idle rule changes.
type Signals interface {
	// Seen records a use of the student's server now (a request).
	Seen(course, student string)
	// Opened records a connection to the server open from now until
	// closed is called; while one is open the server is not idle.
	Opened(course, student string) (closed func())
}

// Outside records the signals of every outside source of a site. It is safe
// for concurrent use.
type Outside struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[2]string]Traffic // by course and student
}

var (
	_ Signals       = (*Outside)(nil)
	_ TrafficSource = (*Outside)(nil)
)

// NewOutside returns an empty record; now is its clock (time.Now when nil).
func NewOutside(now func() time.Time) *Outside {
	if now == nil {
		now = time.Now
	}
	return &Outside{now: now, m: map[[2]string]Traffic{}}
}

// Seen implements Signals.
func (o *Outside) Seen(course, student string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := [2]string{course, student}
	tr := o.m[k]
	tr.Last = o.now()
	o.m[k] = tr
}

// Opened implements Signals. Closing counts as a use too: the student was
// there until then.
func (o *Outside) Opened(course, student string) (closed func()) {
	k := [2]string{course, student}
	o.mu.Lock()
	tr := o.m[k]
	tr.Last = o.now()
	tr.Websockets++
	o.m[k] = tr
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		tr := o.m[k]
		tr.Last = o.now()
		tr.Websockets--
		o.m[k] = tr
	}
}

// Traffic implements TrafficSource: what every source said of the
// student's server; ok is false when none said anything.
func (o *Outside) Traffic(course, student string) (Traffic, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	tr, ok := o.m[[2]string{course, student}]
	return tr, ok
}
