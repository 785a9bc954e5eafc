package proxy

import (
	"fmt"
	"sync"
	"time"
)

// Traffic is what the front door saw of one student's server: a source of
// activity that needs no probe. Jupyter's own activity says what kernels
// did; this says a browser is there (an open notebook holds websockets
// even while nothing runs).
type Traffic struct {
	// Last is the time of the last request through the proxy, or of the
	// last websocket closing.
	Last time.Time `json:"last,omitzero"`
	// Websockets is the number of websockets open now.
	Websockets int `json:"websockets"`
}

// Active reports whether the traffic makes the server active at now with
// the idle period idle: a websocket is open, or the last request is
// younger than idle.
func (t Traffic) Active(now time.Time, idle time.Duration) bool {
	return t.Websockets > 0 || (!t.Last.IsZero() && now.Sub(t.Last) < idle)
}

// Why says it in words, for `why` and the logs.
func (t Traffic) Why(now time.Time) string {
	last := "no request through the front door"
	if !t.Last.IsZero() {
		last = fmt.Sprintf("last request through the front door %s ago", now.Sub(t.Last).Round(time.Second))
	}
	switch t.Websockets {
	case 0:
		return last
	case 1:
		return last + ", 1 websocket open"
	default:
		return fmt.Sprintf("%s, %d websockets open", last, t.Websockets)
	}
}

// TrafficSource gives the traffic of students' servers; the activity rule
// can hold a server on it.
type TrafficSource interface {
	// Traffic returns what the front door saw of a student's server since
	// the daemon started; ok is false when it saw nothing.
	Traffic(course, student string) (t Traffic, ok bool)
}

// traffic records Traffic per server.
type traffic struct {
	mu  sync.Mutex
	m   map[Key]Traffic
	now func() time.Time
}

func (t *traffic) request(k Key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.m[k]
	tr.Last = t.now()
	t.m[k] = tr
}

// websocket counts one open websocket of k; the returned func, called when
// it closes, uncounts it.
func (t *traffic) websocket(k Key) (closed func()) {
	t.mu.Lock()
	tr := t.m[k]
	tr.Last = t.now()
	tr.Websockets++
	t.m[k] = tr
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		tr := t.m[k]
		tr.Last = t.now()
		tr.Websockets--
		t.m[k] = tr
	}
}

func (t *traffic) get(k Key) (Traffic, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.m[k]
	return tr, ok
}
