package jupytertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDial(t *testing.T) {
	tests := []struct {
		url              string
		wantURL, wantErr string
		wantBase         string
		wantPort         int
	}{
		{url: "http://127.0.0.1:8123/8123/", wantURL: "http://127.0.0.1:8123/8123/", wantBase: "/8123/", wantPort: 8123},
		{url: "http://127.0.0.1:8123/8123", wantURL: "http://127.0.0.1:8123/8123/", wantBase: "/8123/", wantPort: 8123},
		{url: "http://localhost:9000", wantURL: "http://localhost:9000/", wantBase: "/", wantPort: 9000},
		{url: "https://127.0.0.1:8123/", wantErr: "want http://"},
		{url: "127.0.0.1:8123", wantErr: "want http://"},
	}
	for _, tt := range tests {
		s, err := Dial(tt.url, "tok")
		if tt.wantErr != "" {
			if err == nil {
				t.Errorf("Dial(%q) = %+v, want an error", tt.url, s)
			}
			continue
		}
		if err != nil || s.URL != tt.wantURL || s.BaseURL != tt.wantBase || s.HostPort != tt.wantPort || s.Token != "tok" {
			t.Errorf("Dial(%q) = %+v, %v; want URL %s, base %s, port %d", tt.url, s, err, tt.wantURL, tt.wantBase, tt.wantPort)
		}
	}
}

// A dialed server's API calls go to its base URL with its token.
func TestDialSendsToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/8123/api/kernels" || r.Header.Get("Authorization") != "token tok" {
			http.Error(w, "wrong request: "+r.URL.Path+" "+r.Header.Get("Authorization"), http.StatusForbidden)
			return
		}
		w.Write([]byte(`[{"id": "k1", "execution_state": "idle"}]`))
	}))
	defer srv.Close()
	s, err := Dial(srv.URL+"/8123/", "tok")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := s.KernelsUntracked(t.Context())
	if err != nil || len(ks) != 1 || ks[0].ID != "k1" {
		t.Fatalf("kernels = %+v, %v", ks, err)
	}
}
