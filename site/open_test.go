package site

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/manifest"
)

// A course with ui: auto asks its running server which interface it has:
// JupyterLab's /lab answers where it is installed, and nowhere else.
func TestServerUI(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   manifest.UI
	}{
		{http.StatusOK, manifest.UILab},
		{http.StatusNotFound, manifest.UIClassic},
		{http.StatusForbidden, ""}, // a token refused: no guess
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/u/flot/alice/lab" || r.Header.Get("Authorization") != "token tok" {
				http.Error(w, "unexpected request", http.StatusTeapot)
				return
			}
			w.WriteHeader(tc.status)
		}))
		ui, err := serverUI(t.Context(), srv.URL+"/u/flot/alice/", "tok")
		srv.Close()
		if ui != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("server answering %d: %q, %v; want %q", tc.status, ui, err, tc.want)
		}
	}
}

// A bad path is refused before anything is read or spawned.
func TestOpenRefusesABadPathFirst(t *testing.T) {
	var s Site // no config, no engine: reaching either would fail otherwise
	if _, _, err := s.Open(t.Context(), "flot", "alice", "", "../bob/x.ipynb"); !errors.Is(err, containers.ErrBadPath) {
		t.Errorf("Open: %v, want ErrBadPath", err)
	}
}
