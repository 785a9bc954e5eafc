// Package metrics holds the daemon's Prometheus collectors, on a private
// registry (never the global one, so tests and several daemons in one
// process do not collide), with one method per thing worth counting.
package metrics

import (
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "nbh_sync"

// Metrics records what the daemon does; the zero value is not usable, call
// New. Its methods are safe for concurrent use.
type Metrics struct {
	reg           *prometheus.Registry
	passDuration  *prometheus.HistogramVec
	buildDuration *prometheus.HistogramVec
	actions       *prometheus.CounterVec
	builds        *prometheus.CounterVec
	containers    *prometheus.GaugeVec
	probeErrors   *prometheus.CounterVec
	cpuEngine     prometheus.Counter
	gitErrors     *prometheus.CounterVec
	lastPass      prometheus.Gauge
	passes        *prometheus.CounterVec

	// The students' front door.
	fdRequests   *prometheus.CounterVec
	fdWebsockets prometheus.Gauge
	fdSpawns     *prometheus.HistogramVec
	fdRejected   *prometheus.CounterVec
}

// New returns Metrics registered on a fresh registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		passDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "pass_duration_seconds",
			Help:    "Duration of passes, by kinds (e.g. pull+reconcile) and result (ok, error).",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600},
		}, []string{"kinds", "result"}),
		buildDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "build_duration_seconds",
			Help:    "Duration of image builds, smoke test included, by image and result.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"image", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "actions_total",
			Help: "Container actions applied, by kind (stop, remove, create, start, ...) and course.",
		}, []string{"kind", "course"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "builds_total",
			Help: "Image builds, by image and result (ok, failed, smoke-failed, ...).",
		}, []string{"image", "result"}),
		containers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "containers",
			Help: "Student containers seen by the last container pass, by course, state and staleness of their image.",
		}, []string{"course", "state", "stale"}),
		probeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "probe_errors_total",
			Help: "Activity probes that failed, by course.",
		}, []string{"course"}),
		cpuEngine: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "cpu_engine_reads_total",
			Help: "Engine calls made to read containers' CPU time (when their cgroups are not on this host), apart from each pass's constant engine calls.",
		}),
		gitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "git_errors_total",
			Help: "Failed git operations (remote check, fetch), by remote (credentials removed).",
		}, []string{"remote"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "last_successful_pass_timestamp_seconds",
			Help: "Unix time of the end of the last pass that succeeded.",
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "passes_total",
			Help: "Passes run, by result (ok, error).",
		}, []string{"result"}),
		fdRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "frontdoor_requests_total",
			Help: "Requests the students' front door answered, by status class (1xx: websocket upgrades, counted when they close; 2xx ... 5xx).",
		}, []string{"class"}),
		fdWebsockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "frontdoor_websockets",
			Help: "Websockets open through the front door.",
		}),
		fdSpawns: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "frontdoor_spawn_duration_seconds",
			Help:    "Servers the front door started on demand (a page load on a stopped or removed server), by result (ok, archived, unknown-course, error), and how long each took.",
			Buckets: []float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 180},
		}, []string{"result"}),
		fdRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "frontdoor_rejections_total",
			Help: "Launch tickets and sessions the front door refused, by reason (ticket-unknown: forged or replayed, ticket-expired, ticket-other-server, no-session, session-forged, session-expired, session-other-student, cross-origin).",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(m.passDuration, m.buildDuration, m.actions, m.builds, m.containers,
		m.probeErrors, m.cpuEngine, m.gitErrors, m.lastPass, m.passes,
		m.fdRequests, m.fdWebsockets, m.fdSpawns, m.fdRejected,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the private registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func result(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// ObservePass records a pass: kinds is its kinds as a string (for instance
// trigger.Kinds.String()); a pass without error also moves the last
// successful pass timestamp to end.
func (m *Metrics) ObservePass(kinds string, d time.Duration, err error, end time.Time) {
	m.passDuration.WithLabelValues(kinds, result(err)).Observe(d.Seconds())
	m.passes.WithLabelValues(result(err)).Inc()
	if err == nil {
		m.lastPass.Set(float64(end.UnixNano()) / 1e9)
	}
}

// ObserveBuild records one build of image with its result ("ok", "failed",
// "smoke-failed", ...).
func (m *Metrics) ObserveBuild(image, result string, d time.Duration) {
	m.buildDuration.WithLabelValues(image, result).Observe(d.Seconds())
	m.builds.WithLabelValues(image, result).Inc()
}

// CountAction records one container action applied.
func (m *Metrics) CountAction(kind, course string) {
	m.actions.WithLabelValues(kind, course).Inc()
}

// ContainerCount is the number of containers of a course in one state.
type ContainerCount struct {
	Course string
	State  string // "running", "stopped", ...
	Stale  bool
	Count  int
}

// SetContainers replaces the containers gauge with counts, so that courses
// and states that disappeared stop being reported.
func (m *Metrics) SetContainers(counts []ContainerCount) {
	m.containers.Reset()
	for _, c := range counts {
		stale := "false"
		if c.Stale {
			stale = "true"
		}
		m.containers.WithLabelValues(c.Course, c.State, stale).Add(float64(c.Count))
	}
}

// CountCPUEngineReads adds the engine calls a pass made to read CPU time.
func (m *Metrics) CountCPUEngineReads(n int) { m.cpuEngine.Add(float64(n)) }

// ProbeError counts a failed activity probe of a container of course.
func (m *Metrics) ProbeError(course string) { m.probeErrors.WithLabelValues(course).Inc() }

// GitError counts a failed git operation on remote. Credentials in a URL
// are removed before it becomes a label.
func (m *Metrics) GitError(remote string) { m.gitErrors.WithLabelValues(redact(remote)).Inc() }

func redact(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil {
		return remote
	}
	u.User = nil
	return u.String()
}

// FrontDoorRequest counts a request the front door answered, by status
// class ("2xx").
func (m *Metrics) FrontDoorRequest(class string) { m.fdRequests.WithLabelValues(class).Inc() }

// FrontDoorWebsockets moves the count of websockets open through the front
// door by delta.
func (m *Metrics) FrontDoorWebsockets(delta int) { m.fdWebsockets.Add(float64(delta)) }

// FrontDoorSpawn records a server the front door started on demand.
func (m *Metrics) FrontDoorSpawn(result string, d time.Duration) {
	m.fdSpawns.WithLabelValues(result).Observe(d.Seconds())
}

// FrontDoorRejected counts a launch ticket or session the front door
// refused, by reason.
func (m *Metrics) FrontDoorRejected(reason string) { m.fdRejected.WithLabelValues(reason).Inc() }
