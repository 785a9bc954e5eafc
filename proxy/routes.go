package proxy

import (
	"sync"
	"time"
)

// Key names a student's server: one per (course, student).
type Key struct {
	Course, Student string
}

// Route says where a student's server answers.
type Route struct {
	Key
	// Host is the server's address, host:port (127.0.0.1:PORT).
	Host string
	// BasePath is the URL prefix the server serves under (its Jupyter
	// base_url), with slashes at both ends: /u/COURSE/STUDENT/, or
	// nbhosting's /PORT/. The proxy serves the route under the same prefix
	// and never rewrites paths, so the server's own links stay right.
	BasePath string
	// Port is the host port and UID the uid the server runs as, for token
	// placeholders.
	Port int
	UID  string
}

// Table is the route table: who answers where. It is safe for concurrent
// use. Container passes replace it as a whole from what they observed;
// spawns add to it as they happen.
type Table struct {
	mu     sync.RWMutex
	byKey  map[Key]entry
	byBase map[string]Key
}

type entry struct {
	Route
	set time.Time
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{byKey: map[Key]entry{}, byBase: map[string]Key{}}
}

// Set adds or replaces the route of r.Key, as of now.
func (t *Table) Set(r Route) { t.set(r, time.Now()) }

func (t *Table) set(r Route, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drop(r.Key)
	t.byKey[r.Key] = entry{Route: r, set: at}
	t.byBase[r.BasePath] = r.Key
}

// drop removes k's route. t.mu held.
func (t *Table) drop(k Key) {
	if old, ok := t.byKey[k]; ok {
		delete(t.byKey, k)
		if t.byBase[old.BasePath] == k {
			delete(t.byBase, old.BasePath)
		}
	}
}

// Drop removes r's route if it is still r (a server found down), so that
// the next request starts it again.
func (t *Table) Drop(r Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.byKey[r.Key]; ok && cur.Route == r {
		t.drop(r.Key)
	}
}

// Sync replaces the table with the running servers a container pass
// observed at observedAt. Routes set after that (by a spawn that raced the
// pass's listing) are kept: the listing could not have seen them.
func (t *Table) Sync(routes []Route, observedAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := map[Key]entry{}
	for k, e := range t.byKey {
		if e.set.After(observedAt) {
			keep[k] = e
		}
	}
	t.byKey, t.byBase = map[Key]entry{}, map[string]Key{}
	for _, r := range routes {
		t.byKey[r.Key] = entry{Route: r, set: observedAt}
		t.byBase[r.BasePath] = r.Key
	}
	for k, e := range keep {
		t.drop(k)
		t.byKey[k] = e
		t.byBase[e.BasePath] = k
	}
}

// Lookup returns the route of a student's server.
func (t *Table) Lookup(k Key) (Route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.byKey[k]
	return e.Route, ok
}

// ByBase returns the route served under base path.
func (t *Table) ByBase(base string) (Route, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	k, ok := t.byBase[base]
	if !ok {
		return Route{}, false
	}
	return t.byKey[k].Route, true
}

// Len is the number of routes.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byKey)
}
