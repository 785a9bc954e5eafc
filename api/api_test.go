package api_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Scripts and the dashboard read these documents by their field names:
// every field, set, comes out under the name it always had, and reads back
// into the same value.
func TestDocumentsKeepTheirFieldNames(t *testing.T) {
	uid := 1001
	docs := []struct {
		name string
		doc  any
		want string
	}{
		{"status", &api.Status{Revision: "r", ConfigError: "ce",
			Courses: []api.CourseView{{Name: "c", Repo: "u", Branch: "b", Commit: "k", Checked: at, Fetched: at, Image: "i", BuildKey: "bk",
				Archived: true, Containers: 4, OnCurrent: 3, Stale: 1, Running: 2, Error: "e", ImageError: "ie",
				Workspaces: api.WorkspacesView{Count: 3, Behind: 1, Conflicts: 1, LastMerge: &api.WorkspaceMerge{Student: "s",
					WorkspaceEvent: api.WorkspaceEvent{Time: at, Op: "merge", Commit: "k", Result: "conflicts", Message: "m"}}}}},
			Images: []api.ImageView{{Name: "i", Base: "b", From: "f", BuildKey: "bk", Tag: "t", Source: "s", Pinned: true, Built: at,
				Courses: []string{"c"}, Error: "e", Failed: &api.FailedBuild{BuildKey: "bk", Stage: "smoke", Time: at, Error: "e", LogTail: "l"}}},
			Builds:    []api.BuildView{{Image: "i", BuildKey: "bk", Commit: "k", Result: "ok", Time: at, Duration: time.Second, Message: "m", Log: "l"}},
			Actions:   []api.ActionView{{Kind: "stop", Course: "c", Student: "s", Reason: "r", Result: "ok", Time: at}},
			Errors:    []string{"e"},
			LastPass:  at,
			Schedules: map[string]time.Time{"pull": at},
			HeldPrune: "h"},
			`{"revision":"r","config_error":"ce",` +
				`"courses":[{"name":"c","repo":"u","branch":"b","commit":"k","checked":"2026-01-02T03:04:05Z","fetched":"2026-01-02T03:04:05Z","image":"i","build_key":"bk","archived":true,"containers":4,"on_current":3,"stale":1,"running":2,"error":"e","image_error":"ie",` +
				`"workspaces":{"count":3,"behind":1,"conflicts":1,"last_merge":{"student":"s","time":"2026-01-02T03:04:05Z","op":"merge","commit":"k","result":"conflicts","message":"m"}}}],` +
				`"images":[{"name":"i","base":"b","from":"f","build_key":"bk","tag":"t","source":"s","pinned":true,"built":"2026-01-02T03:04:05Z","courses":["c"],"error":"e","failed":{"build_key":"bk","stage":"smoke","time":"2026-01-02T03:04:05Z","error":"e","log_tail":"l"}}],` +
				`"builds":[{"image":"i","build_key":"bk","commit":"k","result":"ok","time":"2026-01-02T03:04:05Z","duration_ns":1000000000,"message":"m","log":"l"}],` +
				`"actions":[{"kind":"stop","course":"c","student":"s","reason":"r","result":"ok","time":"2026-01-02T03:04:05Z"}],` +
				`"errors":["e"],"last_pass":"2026-01-02T03:04:05Z","schedules":{"pull":"2026-01-02T03:04:05Z"},"held_prune":"h"}`},
		{"plan", &api.Plan{
			Config: api.PlanConfig{Commit: "k", Change: "rejected", Rejected: &api.Rejection{Commit: api.Hash{0xab, 19: 1},
				Problems: []api.Problem{{File: "courses.yaml", Line: 3, Col: 5, Path: "courses.x.idle", Message: "m", Warning: true}}, At: at}},
			Pulls:   []api.PlanPull{{Course: "c", From: "a", To: "b"}},
			Builds:  []api.PlanBuild{{Image: "i", Courses: []string{"c"}, Key: "k", Dockerfile: "d", Base: "b", Bases: []string{"b"}, Action: "build", Reason: "r", Cascade: []string{"j"}}},
			Actions: []api.PlanAction{{Kind: "hold", Course: "c", Student: "s", Container: "n", ID: "id", Reason: "r", Held: "remove", State: "running", ImageID: "sha", At: at}},
			Workspaces: []api.PlanWorkspace{{Course: "c", Student: "s", Mode: "copy", Commit: "a", To: "b", Action: "wait", Reason: "r",
				Last: &api.WorkspaceEvent{Time: at, Op: "init", Commit: "a", Result: "ok", Message: "m"}}},
			Changes: 3,
			Errors:  []string{"e"}},
			`{"config":{"commit":"k","change":"rejected","rejected":{"commit":"ab00000000000000000000000000000000000001",` +
				`"problems":[{"file":"courses.yaml","line":3,"col":5,"path":"courses.x.idle","message":"m","warning":true}],"at":"2026-01-02T03:04:05Z"}},` +
				`"pulls":[{"course":"c","from":"a","to":"b"}],` +
				`"builds":[{"image":"i","courses":["c"],"key":"k","dockerfile":"d","base":"b","bases":["b"],"action":"build","reason":"r","cascade":["j"]}],` +
				`"actions":[{"kind":"hold","course":"c","student":"s","container":"n","id":"id","reason":"r","held":"remove","state":"running","image_id":"sha","at":"2026-01-02T03:04:05Z"}],` +
				`"workspaces":[{"course":"c","student":"s","mode":"copy","commit":"a","to":"b","action":"wait","reason":"r","last":{"time":"2026-01-02T03:04:05Z","op":"init","commit":"a","result":"ok","message":"m"}}],` +
				`"changes":3,"errors":["e"]}`},
		{"reset request", &api.ResetRequest{Course: "c", Student: "s", Path: "p"}, `{"course":"c","student":"s","path":"p"}`},
		{"reset result", &api.ResetResult{Path: "p", Beside: "b", Backup: "k"}, `{"path":"p","beside":"b","backup":"k"}`},
		{"share request", &api.ShareRequest{Course: "c", Student: "s", Path: "p"}, `{"course":"c","student":"s","path":"p"}`},
		{"share result", &api.ShareResult{Token: "t", URL: "u", Size: 1}, `{"token":"t","url":"u","size":1}`},
		{"spawn request", &api.SpawnRequest{Course: "c", Student: "s", UID: &uid}, `{"course":"c","student":"s","uid":1001}`},
		{"spawn result", &api.SpawnResult{Name: "n", ID: "i", State: "created", Port: 30001, URL: "u", Host: "h", Token: "t", LaunchURL: "l"},
			`{"name":"n","id":"i","state":"created","port":30001,"url":"u","host":"h","token":"t","launch_url":"l"}`},
		{"sync request", &api.SyncRequest{Course: "c", Kinds: []string{"sync"}, Source: "api"}, `{"course":"c","kinds":["sync"],"source":"api"}`},
		{"sync result", &api.SyncResult{Courses: []string{"c"}}, `{"courses":["c"]}`},
		{"confirm prune", &api.ConfirmPruneRequest{Revision: "r"}, `{"revision":"r"}`},
		{"demo request", &api.DemoRequest{Course: "c"}, `{"course":"c"}`},
		{"demo result", &api.DemoResult{Name: "n", State: "started", LaunchURL: "l"}, `{"name":"n","state":"started","launch_url":"l"}`},
		{"ack", &api.Ack{Status: "ok"}, `{"status":"ok"}`},
		{"error", &api.Error{Error: "e"}, `{"error":"e"}`},
	}
	for _, d := range docs {
		b, err := json.Marshal(d.doc)
		if err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		if string(b) != d.want {
			t.Errorf("%s:\n got %s\nwant %s", d.name, b, d.want)
		}
		back := reflect.New(reflect.TypeOf(d.doc).Elem())
		if err := json.Unmarshal(b, back.Interface()); err != nil {
			t.Fatalf("%s: read back: %v", d.name, err)
		}
		if !reflect.DeepEqual(back.Interface(), d.doc) {
			t.Errorf("%s: read back as %+v, want %+v", d.name, back.Elem(), reflect.ValueOf(d.doc).Elem())
		}
	}
}

func TestHashString(t *testing.T) {
	if got := (api.Hash{0xab, 19: 1}).String(); got != "ab00000000000000000000000000000000000001" {
		t.Errorf("Hash.String() = %s", got)
	}
}

func TestRollout(t *testing.T) {
	for _, c := range []struct {
		containers, onCurrent, want int
	}{
		{0, 0, 100}, // nothing to roll out
		{4, 3, 75},
		{3, 0, 0},
		{2, 2, 100},
	} {
		v := api.CourseView{Containers: c.containers, OnCurrent: c.onCurrent}
		if got := v.Rollout(); got != c.want {
			t.Errorf("%d of %d containers on the current image: Rollout() = %d, want %d", c.onCurrent, c.containers, got, c.want)
		}
	}
}

func TestViewsFromHistory(t *testing.T) {
	recs := []history.Record{
		{Kind: history.KindBuild, Image: "ds", BuildKey: "k1", Result: "failed", Time: at, Log: "boom", Message: "exit 1"},
		{Kind: history.KindAction, Course: "c", Student: "s", Action: "stop", Message: "idle 3h", Result: "ok", Time: at},
		{Kind: history.KindPull, Course: "c"},
	}
	b, a := api.BuildViews(recs), api.ActionViews(recs)
	if len(b) != 1 || b[0].Log != "boom" || b[0].Result != "failed" || b[0].Image != "ds" {
		t.Errorf("builds = %+v", b)
	}
	if len(a) != 1 || a[0].Kind != "stop" || a[0].Reason != "idle 3h" || a[0].Student != "s" {
		t.Errorf("actions = %+v", a)
	}
}
