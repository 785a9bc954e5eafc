package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestRecordAndExpose(t *testing.T) {
	m := New()
	end := time.Unix(1_700_000_000, 500_000_000)
	m.ObservePass("pull+reconcile", 2*time.Second, nil, end)
	m.ObservePass("pull", time.Second, errors.New("boom"), end.Add(time.Hour))
	m.ObserveBuild("ds", "ok", 90*time.Second)
	m.ObserveBuild("ds", "failed", 10*time.Second)
	m.CountAction("stop", "flotpython")
	m.CountAction("stop", "flotpython")
	m.CountAction("remove", "ds")
	m.SetContainers([]ContainerCount{{"flotpython", "running", false, 3}, {"old", "stopped", true, 1}})
	m.SetContainers([]ContainerCount{{"flotpython", "running", false, 2}, {"flotpython", "running", true, 1}})
	m.ProbeError("flotpython")
	m.GitError("https://user:secret@example.org/x.git")
	m.FrontDoorRequest("2xx")
	m.FrontDoorRequest("2xx")
	m.FrontDoorWebsockets(1)
	m.FrontDoorWebsockets(1)
	m.FrontDoorWebsockets(-1)
	m.FrontDoorSpawn("ok", 3*time.Second)
	m.FrontDoorRejected("ticket-expired")

	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"actions stop", testutil.ToFloat64(m.actions.WithLabelValues("stop", "flotpython")), 2},
		{"builds failed", testutil.ToFloat64(m.builds.WithLabelValues("ds", "failed")), 1},
		{"containers current", testutil.ToFloat64(m.containers.WithLabelValues("flotpython", "running", "false")), 2},
		{"containers stale", testutil.ToFloat64(m.containers.WithLabelValues("flotpython", "running", "true")), 1},
		{"containers series", float64(testutil.CollectAndCount(m.containers)), 2},
		{"last pass is the successful one", testutil.ToFloat64(m.lastPass), 1_700_000_000.5},
		{"probe errors", testutil.ToFloat64(m.probeErrors.WithLabelValues("flotpython")), 1},
		{"front door 2xx", testutil.ToFloat64(m.fdRequests.WithLabelValues("2xx")), 2},
		{"front door websockets open", testutil.ToFloat64(m.fdWebsockets), 1},
		{"front door rejections", testutil.ToFloat64(m.fdRejected.WithLabelValues("ticket-expired")), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// The exposition parses with the Prometheus text parser and carries
	// every family; no credential leaks into a label.
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	body := rr.Body.String()
	if strings.Contains(body, "secret") {
		t.Error("a credential leaked into /metrics")
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	for _, name := range []string{"pass_duration_seconds", "build_duration_seconds", "actions_total",
		"builds_total", "containers", "probe_errors_total", "git_errors_total",
		"last_successful_pass_timestamp_seconds", "passes_total", "frontdoor_requests_total", "frontdoor_websockets",
		"frontdoor_spawn_duration_seconds", "frontdoor_rejections_total"} {
		if fams[Namespace+"_"+name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
	if fams["go_goroutines"] == nil {
		t.Error("runtime collectors missing")
	}
	g := fams[Namespace+"_git_errors_total"].GetMetric()[0].GetLabel()[0].GetValue()
	if g != "https://example.org/x.git" {
		t.Errorf("git remote label = %q", g)
	}
}

func TestPrivateRegistries(t *testing.T) {
	// Two instances must not collide (the global registry would panic).
	a, b := New(), New()
	a.CountAction("stop", "x")
	if testutil.ToFloat64(b.actions.WithLabelValues("stop", "x")) != 0 {
		t.Error("registries share state")
	}
}
