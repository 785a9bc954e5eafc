package proxy

import (
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/activity"
)

// traffic records what the front door sees of each server, for the
// activity rule.
type traffic struct {
	mu  sync.Mutex
	m   map[Key]activity.Traffic
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

func (t *traffic) get(k Key) (activity.Traffic, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr, ok := t.m[k]
	return tr, ok
}
