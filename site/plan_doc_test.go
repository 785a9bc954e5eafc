package site

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/nbhosting/nbh-sync/configrepo"
	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/githash"
	"github.com/nbhosting/nbh-sync/manifest"
	"github.com/nbhosting/nbh-sync/reconcile"
)

// The plan document carried reconcile's actions and gitwatch's rejection as
// they are: their forms in package api read the same on the wire, field
// for field.
func TestPlanDocumentReadsAsBefore(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	same := func(what string, before, now any) {
		t.Helper()
		b, err := json.Marshal(before)
		if err != nil {
			t.Fatal(err)
		}
		n, err := json.Marshal(now)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(n) {
			t.Errorf("%s:\n was %s\n now %s", what, b, n)
		}
	}
	for _, a := range []reconcile.Action{
		{Kind: reconcile.Hold, Held: reconcile.Remove, Course: "c", Student: "s", Container: "c-x-s", ID: "id", Reason: "r",
			State: containers.Running, ImageID: "sha256:1", At: at},
		{Kind: reconcile.Keep},
	} {
		same("action", a, planAction(a))
	}
	for _, r := range []*configrepo.Rejection{
		{Commit: githash.Hash(plumbing.NewHash("ab00000000000000000000000000000000000001")), At: at,
			Problems: []manifest.Problem{{File: "courses.yaml", Line: 3, Col: 5, Path: "courses.x.idle", Message: "m", Warning: true}, {Message: "n"}}},
		{Problems: []manifest.Problem{}},
		{},
		nil,
	} {
		same("rejection", r, rejection(r))
	}
}
