package site

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nbhosting/nbh-sync/images"
)

// TestHoldsRecordUpdate: a change is written only when it says so and
// does not fail, so a refused resume leaves the file as it was.
func TestHoldsRecordUpdate(t *testing.T) {
	errNo := errors.New("refused")
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		write   bool
		err     error
		wantErr error
		held    bool // the file holds the course after
	}{
		{name: "written", write: true, held: true},
		{name: "not asked to write", write: false},
		{name: "refused", write: true, err: errNo, wantErr: errNo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &holdsRecord{path: filepath.Join(t.TempDir(), "holds.json"), log: slog.New(slog.DiscardHandler)}
			err := r.update(func(h holdsFile) (bool, error) {
				h.Courses["intro"] = runtimeHold{By: "ops", Since: since}
				return tc.write, tc.err
			})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("update = %v, want %v", err, tc.wantErr)
			}
			rh, held := r.read().Courses["intro"]
			if held != tc.held || (held && (rh.By != "ops" || !rh.Since.Equal(since))) {
				t.Errorf("after update: %+v, held %v; want held %v", rh, held, tc.held)
			}
		})
	}
}

// TestLastPassRecord: the pass this process ran wins; before one, the
// recorded pass (another process's, or before a restart) is read; a
// missing or broken file is no pass.
func TestLastPassRecord(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		file   string // the file's content before ("" = absent)
		set    bool   // this process ran a pass at at+1m
		wantAt time.Time
	}{
		{name: "nothing yet"},
		{name: "broken file", file: "{"},
		{name: "recorded", file: `{"at":"2026-01-02T03:04:05Z"}`, wantAt: at},
		{name: "ran here", file: `{"at":"2026-01-02T03:04:05Z"}`, set: true, wantAt: at.Add(time.Minute)},
		{name: "ran here, no file before", set: true, wantAt: at.Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "last-pass.json")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := &lastPassRecord{path: path, log: slog.New(slog.DiscardHandler)}
			if tc.set {
				r.set(t.Context(), PassReport{At: at.Add(time.Minute)})
			}
			got := r.get()
			if tc.wantAt.IsZero() {
				if got != nil {
					t.Errorf("get = %+v, want none", got)
				}
				return
			}
			if got == nil || !got.At.Equal(tc.wantAt) {
				t.Fatalf("get = %+v, want a pass at %v", got, tc.wantAt)
			}
			// What this process ran is what another one reads.
			other := &lastPassRecord{path: path}
			if o := other.get(); o == nil || !o.At.Equal(tc.wantAt) {
				t.Errorf("another process reads %+v, want a pass at %v", o, tc.wantAt)
			}
		})
	}
}

// TestFailuresRecord: saved failures load back as they were; a broken
// file loads as none.
func TestFailuresRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "build-failures.json")
	r := &failuresRecord{path: path, log: slog.New(slog.DiscardHandler)}
	if got := r.load(); got != nil {
		t.Errorf("load before any save = %v", got)
	}
	want := []images.Failure{{Image: "py", Key: "k1", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stage: images.StageBuild, InputsAtFault: true, Error: "boom"}}
	r.save(t.Context(), want)
	got := r.load()
	if len(got) != 1 || got[0].Image != want[0].Image || got[0].Key != want[0].Key || !got[0].At.Equal(want[0].At) ||
		got[0].Stage != want[0].Stage || got[0].InputsAtFault != want[0].InputsAtFault || got[0].Error != want[0].Error {
		t.Errorf("load = %+v, want %+v", got, want)
	}
	if err := os.WriteFile(path, []byte("[{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := r.load(); got != nil {
		t.Errorf("load of a broken file = %v", got)
	}
}
