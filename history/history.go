// Package history is the daemon's embedded record of what it did: pulls,
// builds (with their logs), container actions, config revisions applied or
// rejected, and errors. It lives in one bbolt file under the data root, needs
// no external database, and prunes itself by age and count.
//
// bbolt holds an exclusive file lock while the daemon has the store open; a
// second process (the CLI) that tries to open it gets ErrLocked after a short
// wait, and should ask the daemon's API instead.
package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Kind says what a record is about.
type Kind string

// The kinds of record.
const (
	KindPull   Kind = "pull"   // a repo was fetched (or its fetch failed)
	KindBuild  Kind = "build"  // an image build, with its log
	KindAction Kind = "action" // a container action (stop, remove, create, ...)
	KindConfig Kind = "config" // a config revision applied or rejected
	KindError  Kind = "error"  // an error not tied to one of the above
	// KindWorkspace is an operation on a student's workspace (init,
	// merge, reset, share): Action says which, Commit the course commit.
	KindWorkspace Kind = "workspace"
)

// Kinds lists every kind, for validation of user input.
var Kinds = []Kind{KindPull, KindBuild, KindAction, KindConfig, KindError, KindWorkspace}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Record is one entry of the history. Fields that do not apply stay empty.
type Record struct {
	// ID is assigned by Append; it grows with every record.
	ID   uint64    `json:"id"`
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Course, Image and Commit say what the record is about.
	Course string `json:"course,omitempty"`
	Image  string `json:"image,omitempty"`
	Commit string `json:"commit,omitempty"`
	// Student and Action detail a container action ("stop", "remove", ...).
	Student string `json:"student,omitempty"`
	Action  string `json:"action,omitempty"`
	// BuildKey is the build key of a build record.
	BuildKey string `json:"build_key,omitempty"`
	// Result is a short outcome: "ok", "failed", "applied", "rejected", ...
	Result string `json:"result,omitempty"`
	// Message is the reason of an action or the error text.
	Message string `json:"message,omitempty"`
	// Duration is how long the operation took, when known.
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Log is a build log, capped to Options.MaxLog bytes (its tail is kept).
	// Query returns it only when Query.WithLog is set.
	Log string `json:"log,omitempty"`
}

// Query filters records; the zero Query returns the newest DefaultLimit
// records of every kind.
type Query struct {
	Kinds  []Kind
	Course string
	Image  string
	// Since drops records older than this time.
	Since time.Time
	// Limit caps the number of records returned (DefaultLimit when 0).
	Limit int
	// WithLog asks for build logs too; they are left out otherwise so that
	// listings stay cheap.
	WithLog bool
}

// Defaults of Options.
const (
	DefaultLimit       = 100
	DefaultMaxAge      = 90 * 24 * time.Hour
	DefaultMaxRecords  = 20000
	DefaultMaxLog      = 256 << 10
	DefaultOpenTimeout = time.Second
)

// Options tune a Store; zero values take the defaults above.
type Options struct {
	// MaxAge and MaxRecords bound what is kept; older or surplus records are
	// pruned on every append. Negative disables the bound.
	MaxAge     time.Duration
	MaxRecords int
	// MaxLog caps the bytes of build log kept per record.
	MaxLog int
	// OpenTimeout bounds the wait for the file lock.
	OpenTimeout time.Duration
	// ReadOnly opens the store without writing (the CLI's direct mode).
	ReadOnly bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// ErrLocked is returned by Open when another process holds the store.
var ErrLocked = errors.New("history store is in use by another process (is the daemon running? ask its API)")

// ErrReadOnly is returned by Append and Prune on a store opened ReadOnly.
var ErrReadOnly = errors.New("history store is open read-only")

var (
	bucketRecords = []byte("records") // id -> record JSON without log
	bucketLogs    = []byte("logs")    // id -> build log
	bucketMeta    = []byte("meta")
	keyCount      = []byte("count")
)

// Store is a history store; it is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opt  Options
	path string
}

// Open opens (creating it unless ReadOnly) the store at path.
func Open(path string, opt Options) (*Store, error) {
	if opt.MaxAge == 0 {
		opt.MaxAge = DefaultMaxAge
	}
	if opt.MaxRecords == 0 {
		opt.MaxRecords = DefaultMaxRecords
	}
	if opt.MaxLog <= 0 {
		opt.MaxLog = DefaultMaxLog
	}
	if opt.OpenTimeout <= 0 {
		opt.OpenTimeout = DefaultOpenTimeout
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if !opt.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open history %s: %w", path, err)
		}
	} else if _, err := os.Stat(path); err != nil {
		// bbolt would create the file; read-only must not.
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opt.OpenTimeout, ReadOnly: opt.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open history %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	s := &Store{db: db, opt: opt, path: path}
	if !opt.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketRecords, bucketLogs, bucketMeta} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open history %s: %w", path, err)
		}
	}
	return s, nil
}

// Close releases the store and its file lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close history %s: %w", s.path, err)
	}
	return nil
}

// Append stores r (its ID set, its Time set to now when zero, its Log
// capped) and prunes what retention no longer keeps. It returns the stored
// record (without its log).
func (s *Store) Append(ctx context.Context, r Record) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("append history: %w", err)
	}
	if s.opt.ReadOnly {
		return Record{}, fmt.Errorf("append history: %w", ErrReadOnly)
	}
	if r.Time.IsZero() {
		r.Time = s.opt.Now()
	}
	r.Time = r.Time.UTC()
	logText := capLog(r.Log, s.opt.MaxLog)
	r.Log = ""
	err := s.db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		id, err := recs.NextSequence()
		if err != nil {
			return err
		}
		r.ID = id
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := recs.Put(key(id), data); err != nil {
			return err
		}
		if logText != "" {
			if err := tx.Bucket(bucketLogs).Put(key(id), []byte(logText)); err != nil {
				return err
			}
		}
		n := count(tx) + 1
		if err := setCount(tx, n); err != nil {
			return err
		}
		_, err = s.prune(tx, n)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("append history %s record: %w", r.Kind, err)
	}
	return r, nil
}

// Prune removes the records retention no longer keeps and returns how many.
// Append prunes too; Prune is for a store that stays quiet for long.
func (s *Store) Prune(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("prune history: %w", err)
	}
	if s.opt.ReadOnly {
		return 0, fmt.Errorf("prune history: %w", ErrReadOnly)
	}
	var removed int
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		removed, err = s.prune(tx, count(tx))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune history: %w", err)
	}
	return removed, nil
}

// prune deletes from the oldest end: records past MaxRecords, then records
// older than MaxAge. Records are appended in time order, so the first young
// enough record ends the age scan.
func (s *Store) prune(tx *bolt.Tx, n int) (int, error) {
	recs, logs := tx.Bucket(bucketRecords), tx.Bucket(bucketLogs)
	cutoff := time.Time{}
	if s.opt.MaxAge > 0 {
		cutoff = s.opt.Now().Add(-s.opt.MaxAge)
	}
	removed := 0
	c := recs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		over := s.opt.MaxRecords > 0 && n > s.opt.MaxRecords
		if !over {
			if cutoff.IsZero() {
				break
			}
			var head struct {
				Time time.Time `json:"time"`
			}
			if err := json.Unmarshal(v, &head); err != nil {
				return removed, fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !head.Time.Before(cutoff) {
				break
			}
		}
		k = bytes.Clone(k)
		if err := c.Delete(); err != nil {
			return removed, err
		}
		if err := logs.Delete(k); err != nil {
			return removed, err
		}
		n--
		removed++
	}
	if removed > 0 {
		return removed, setCount(tx, n)
	}
	return 0, nil
}

// Query returns the records matching q, newest first.
func (s *Store) Query(ctx context.Context, q Query) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("query history: %w", err)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	out := []Record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		if recs == nil { // a read-only open of a store never written
			return nil
		}
		logs := tx.Bucket(bucketLogs)
		c := recs.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !q.Since.IsZero() && r.Time.Before(q.Since) {
				// Appends are in time order: everything further back is older.
				break
			}
			if !q.match(r) {
				continue
			}
			if q.WithLog && logs != nil {
				r.Log = string(logs.Get(k))
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query history: %w", err)
	}
	return out, nil
}

// Len returns the number of records kept.
func (s *Store) Len() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error { n = count(tx); return nil })
	return n, err
}

func (q Query) match(r Record) bool {
	if len(q.Kinds) > 0 && !slices.Contains(q.Kinds, r.Kind) {
		return false
	}
	if q.Course != "" && r.Course != q.Course {
		return false
	}
	if q.Image != "" && r.Image != q.Image {
		return false
	}
	return true
}

// capLog keeps the tail of a log, the part that says why a build failed.
func capLog(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const marker = "[... %d bytes cut ...]\n"
	cut := len(s) - max
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++ // never split a character
	}
	return fmt.Sprintf(marker, cut) + s[cut:]
}

func key(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

func count(tx *bolt.Tx) int {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return 0
	}
	v := m.Get(keyCount)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

func setCount(tx *bolt.Tx, n int) error {
	return tx.Bucket(bucketMeta).Put(keyCount, key(uint64(n)))
}
