// Package notify tells humans when something needs them: a build failed or
// recovered, a config revision was rejected, a remote is unreachable or back.
//
// It posts to generic JSON webhooks and Slack-compatible ones. Webhook URLs
// are secrets: they are read from a file or an environment variable and never
// logged. An unchanged failure is repeated at most once per Repeat (hourly),
// a recovery is sent only after its failure was, and a failing destination
// never fails the caller: errors are logged and the pass goes on.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nbhosting/nbh-sync/manifest"
)

// Kind is what an event is about.
type Kind string

// The kinds of event. Each "recovered" kind closes the failure kind it names.
const (
	BuildFailed       Kind = "build-failed"
	BuildRecovered    Kind = "build-recovered"
	ConfigRejected    Kind = "config-rejected"
	ConfigApplied     Kind = "config-applied" // sent only after a rejection
	RemoteUnreachable Kind = "remote-unreachable"
	RemoteRecovered   Kind = "remote-recovered"
)

// recovers maps a recovery kind to the failure it ends.
var recovers = map[Kind]Kind{
	BuildRecovered:  BuildFailed,
	ConfigApplied:   ConfigRejected,
	RemoteRecovered: RemoteUnreachable,
}

// Event is one notification.
type Event struct {
	Kind Kind `json:"kind"`
	// Subject is what the event is about: an image, a repo (without
	// credentials), "config".
	Subject string `json:"subject"`
	// Message is the error text or a short summary.
	Message string    `json:"message,omitempty"`
	Time    time.Time `json:"time"`
}

// Text renders the event for humans (the Slack message).
func (e Event) Text() string {
	var what string
	switch e.Kind {
	case BuildFailed:
		what = "build of image " + e.Subject + " failed"
	case BuildRecovered:
		what = "build of image " + e.Subject + " succeeded again"
	case ConfigRejected:
		what = "config revision rejected; the last good one stays applied"
	case ConfigApplied:
		what = "config accepted again"
	case RemoteUnreachable:
		what = "remote " + e.Subject + " is unreachable"
	case RemoteRecovered:
		what = "remote " + e.Subject + " is reachable again"
	default:
		what = string(e.Kind) + " " + e.Subject
	}
	if e.Message != "" {
		what += ": " + e.Message
	}
	return "nbh-sync: " + what
}

// Defaults of Options.
const (
	DefaultRepeat  = time.Hour
	DefaultTimeout = 10 * time.Second
)

// Options tune a Notifier; zero values take the defaults.
type Options struct {
	// Repeat is the least time between two sends of the same failure.
	Repeat time.Duration
	// Timeout bounds one send.
	Timeout time.Duration
	Client  *http.Client
	Logger  *slog.Logger
	// Now is the clock; Getenv and ReadFile read URLs (os functions by
	// default).
	Now      func() time.Time
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// sink is one destination; url is secret.
type sink struct {
	kind string
	url  string
	name string // what logs call it: its kind and where its URL came from
}

// Notifier sends events to its destinations; it is safe for concurrent use.
// A nil *Notifier or one without destinations drops every event.
type Notifier struct {
	sinks []sink
	opt   Options
	log   *slog.Logger

	mu   sync.Mutex
	sent map[string]time.Time // sink index + failure key -> last send
}

// New resolves the URLs of specs. A spec whose URL cannot be read is an
// error naming its file or variable (never the URL).
func New(specs []manifest.Notifier, opt Options) (*Notifier, error) {
	if opt.Repeat <= 0 {
		opt.Repeat = DefaultRepeat
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Client == nil {
		opt.Client = &http.Client{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Getenv == nil {
		opt.Getenv = os.Getenv
	}
	if opt.ReadFile == nil {
		opt.ReadFile = os.ReadFile
	}
	n := &Notifier{opt: opt, log: opt.Logger, sent: map[string]time.Time{}}
	var errs []error
	for i, sp := range specs {
		s, err := resolve(sp, opt)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify[%d]: %w", i, err))
			continue
		}
		n.sinks = append(n.sinks, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return n, nil
}

func resolve(sp manifest.Notifier, opt Options) (sink, error) {
	if sp.Kind != "json" && sp.Kind != "slack" {
		return sink{}, fmt.Errorf("unknown kind %q (want json or slack)", sp.Kind)
	}
	var raw, from string
	switch {
	case sp.URLFile != "":
		from = "file " + sp.URLFile
		b, err := opt.ReadFile(sp.URLFile)
		if err != nil {
			return sink{}, fmt.Errorf("read URL from %s: %w", from, err)
		}
		raw = string(b)
	case sp.URLEnv != "":
		from = "env " + sp.URLEnv
		raw = opt.Getenv(sp.URLEnv)
	default:
		return sink{}, errors.New("no url-file or url-env")
	}
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if raw == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The text may be the secret: do not quote it.
		return sink{}, fmt.Errorf("URL from %s is not an http(s) URL", from)
	}
	return sink{kind: sp.Kind, url: raw, name: sp.Kind + " webhook (" + from + ")"}, nil
}

// Notify sends ev to every destination, unless the same failure was sent
// less than Repeat ago, or ev is a recovery from a failure never sent. It
// returns when every send finished or timed out; it never fails.
func (n *Notifier) Notify(ctx context.Context, ev Event) {
	if n == nil || len(n.sinks) == 0 {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = n.opt.Now()
	}
	for i, s := range n.sinks {
		if !n.due(i, ev) {
			continue
		}
		if err := n.send(ctx, s, ev); err != nil {
			n.log.WarnContext(ctx, "notification not sent", "notifier", s.name, "event", string(ev.Kind),
				"subject", ev.Subject, "err", err)
			n.forget(i, ev)
			continue
		}
		n.log.InfoContext(ctx, "notification sent", "notifier", s.name, "event", string(ev.Kind), "subject", ev.Subject)
	}
}

// due decides whether ev goes to sink i, and records it as sent (a failed
// send is forgotten again, so the next attempt is not held back).
func (n *Notifier) due(i int, ev Event) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	prefix := fmt.Sprintf("%d\x00", i)
	if failure, ok := recovers[ev.Kind]; ok {
		// A recovery closes every open failure of its subject.
		open := prefix + string(failure) + "\x00" + ev.Subject + "\x00"
		found := false
		for k := range n.sent {
			if strings.HasPrefix(k, open) {
				delete(n.sent, k)
				found = true
			}
		}
		return found
	}
	k := prefix + key(ev)
	if last, ok := n.sent[k]; ok && n.opt.Now().Sub(last) < n.opt.Repeat {
		return false
	}
	n.sent[k] = n.opt.Now()
	return true
}

func (n *Notifier) forget(i int, ev Event) {
	if _, ok := recovers[ev.Kind]; ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.sent, fmt.Sprintf("%d\x00", i)+key(ev))
}

// key identifies an unchanged failure.
func key(ev Event) string {
	return string(ev.Kind) + "\x00" + ev.Subject + "\x00" + ev.Message
}

func (n *Notifier) send(ctx context.Context, s sink, ev Event) error {
	var payload any
	if s.kind == "slack" {
		payload = map[string]string{"text": ev.Text()}
	} else {
		payload = struct {
			Event
			Text string `json:"text"`
		}{ev, ev.Text()}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return errors.New("build request") // the error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nbh-sync")
	resp, err := n.opt.Client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which is a secret: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: status %s", resp.Status)
	}
	return nil
}
