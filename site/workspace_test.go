package site

import (
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/reconcile"
	"github.com/nbhosting/nbh-sync/workspace"
)

// A workspace is merged only when its student's server is not in use once
// the pass is over.
func TestMergeDecision(t *testing.T) {
	running := func(k reconcile.Kind, reason string) *reconcile.Action {
		return &reconcile.Action{Kind: k, State: containers.Running, Reason: reason}
	}
	for _, tc := range []struct {
		name  string
		a     *reconcile.Action
		done  bool
		merge bool
		why   string
	}{
		{"no container", nil, false, true, "no server"},
		{"stopped, kept", &reconcile.Action{Kind: reconcile.Keep, State: containers.Stopped}, false, true, "server stopped"},
		{"stopped, removed as stale", &reconcile.Action{Kind: reconcile.Remove, State: containers.Stopped}, false, true, "server stopped"},
		{"stopped as idle by the pass", running(reconcile.Stop, "no kernel, idle 3h"), true, true, "server stopped by the pass: no kernel, idle 3h"},
		{"removed by the pass", running(reconcile.Remove, "idle, stale"), true, true, "server removed by the pass"},
		{"a stop that did not happen", running(reconcile.Stop, "idle"), false, false, "server in use"},
		{"active", running(reconcile.Keep, "kernel busy"), false, false, "server in use: kernel busy"},
		{"active and stale", running(reconcile.ReportStale, "connection open"), false, false, "server in use"},
		{"idle but held by a guard", &reconcile.Action{Kind: reconcile.Hold, Held: reconcile.Stop, State: containers.Running, Reason: "retire limit"}, false, false, "server in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			merge, why := mergeDecision(tc.a, tc.done)
			if merge != tc.merge || !strings.Contains(why, tc.why) {
				t.Errorf("mergeDecision = %v %q, want %v %q", merge, why, tc.merge, tc.why)
			}
		})
	}
}

func TestReportText(t *testing.T) {
	for _, tc := range []struct {
		rep  workspace.Report
		want string
	}{
		{workspace.Report{Op: "update"}, "nothing to change"},
		{workspace.Report{Op: "update", Updated: []string{"a", "b"}, Added: []string{"c"}}, "1 added; 2 updated"},
		{workspace.Report{Op: "update", Merged: []string{"n.ipynb"}, Conflicts: []workspace.Conflict{
			{Path: "n.ipynb", Beside: "n (course 2026-12-01).ipynb", Reason: workspace.ReasonBothChanged, Cells: []string{"c3"}}}},
			"1 merged; n (course 2026-12-01).ipynb beside n.ipynb (both changed: c3)"},
	} {
		if got := reportText(&tc.rep); got != tc.want {
			t.Errorf("reportText(%+v) = %q, want %q", tc.rep, got, tc.want)
		}
	}
}
