// Package livelog keeps the log of each image's latest build in memory
// while it runs, so that the dashboard and the API can follow a build as it
// goes. The history store keeps the whole log once a build is over; this
// is only the part that has not reached it yet.
package livelog

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxLog bounds one build's live log; what comes beyond it is dropped (the
// history store keeps the whole log).
const MaxLog = 4 << 20

// ErrNoLog is returned by Follow for an image with no build log here.
var ErrNoLog = errors.New("no build log")

// Logs holds the live build logs, one per image (its latest build). It is
// safe for concurrent use; the zero value is not, use New.
type Logs struct {
	mu   sync.Mutex
	logs map[string]*buildLog
	now  func() time.Time
}

// Build is one build whose log Logs holds.
type Build struct {
	Image   string    `json:"image"`
	Started time.Time `json:"started"`
}

type buildLog struct {
	started time.Time
	text    []byte
	cut     bool
	done    bool
	// changed is closed, and replaced, at every write and at the end.
	changed chan struct{}
}

// New returns an empty Logs.
func New() *Logs { return &Logs{logs: map[string]*buildLog{}, now: time.Now} }

// Writer returns the log writer of a build of image. The build counts as
// running from its first write (a build that is not needed writes nothing)
// until Close; it then replaces the image's previous log.
func (l *Logs) Writer(image string) io.WriteCloser { return &writer{logs: l, image: image} }

type writer struct {
	logs  *Logs
	image string
	log   *buildLog
}

func (w *writer) Write(p []byte) (int, error) {
	l := w.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.log == nil {
		w.log = &buildLog{started: l.now(), changed: make(chan struct{})}
		l.logs[w.image] = w.log
	}
	b := w.log
	if room := MaxLog - len(b.text); room < len(p) {
		if !b.cut {
			b.text = append(b.text, p[:max(room, 0)]...)
			b.text = append(b.text, "\n… (live log cut here; the build's history record has all of it)\n"...)
			b.cut = true
		}
	} else {
		b.text = append(b.text, p...)
	}
	b.wake()
	return len(p), nil
}

func (w *writer) Close() error {
	l := w.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.log != nil && !w.log.done {
		w.log.done = true
		w.log.wake()
	}
	return nil
}

// wake tells the followers that the log changed; the caller holds l.mu.
func (b *buildLog) wake() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Running returns the builds running now, by image name.
func (l *Logs) Running() []Build {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Build
	for image, b := range l.logs {
		if !b.done {
			out = append(out, Build{Image: image, Started: b.started})
		}
	}
	slices.SortFunc(out, func(a, b Build) int { return strings.Compare(a.Image, b.Image) })
	return out
}

// Follow sends image's latest build log to out: what it holds now, then
// each new part as it is written, until the build ends (at once for a build
// that has ended), ctx ends or out fails. ErrNoLog says that no build of
// image wrote a log since the process started.
func (l *Logs) Follow(ctx context.Context, image string, out func([]byte) error) error {
	l.mu.Lock()
	b, ok := l.logs[image]
	l.mu.Unlock()
	if !ok {
		return ErrNoLog
	}
	sent := 0
	for {
		l.mu.Lock()
		part, done, changed := b.text[sent:], b.done, b.changed
		l.mu.Unlock()
		if len(part) > 0 {
			if err := out(part); err != nil {
				return err
			}
			sent += len(part)
		}
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
