package fakejupyter

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestServer(t *testing.T) {
	srv := httptest.NewServer(New("/31000/", "tok", []Kernel{{ID: "k", ExecutionState: "busy"}}))
	defer srv.Close()
	get := func(path, auth string) (int, map[string]any) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/31000/api", "", 200},
		{"/api", "", 404},
		{"/31000/api/kernels", "", 403},
		{"/31000/api/kernels", "token nope", 403},
		{"/31000/api/kernels", "token tok", 200},
		{"/31000/api/kernels?token=tok", "", 200},
	} {
		if code, _ := get(tc.path, tc.auth); code != tc.want {
			t.Errorf("GET %s (%q) = %d, want %d", tc.path, tc.auth, code, tc.want)
		}
	}
	// Like Jupyter: listing kernels moves the global last_activity.
	_, st1 := get("/31000/api/status", "token tok")
	time.Sleep(2 * time.Millisecond) // distinct timestamps, not a wait on a condition
	get("/31000/api/kernels", "token tok")
	_, st2 := get("/31000/api/status", "token tok")
	if st1["last_activity"] == st2["last_activity"] {
		t.Errorf("global last_activity did not move: %v", st2)
	}
}
