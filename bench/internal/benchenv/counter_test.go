package benchenv

import (
	"net/http/httptest"
	"testing"
)

func TestCounterShapes(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1.41/containers/json", "GET /containers/json"},
		{"GET", "/v1.41/containers/abc/json", "GET /containers/{id}/json"},
		{"DELETE", "/v1.41/containers/abc", "DELETE /containers/{id}"},
		{"GET", "/v1.41/images/json", "GET /images/json"},
		{"GET", "/v1.41/images/sha256:abc/json", "GET /images/{id}/json"},
		{"GET", "/v1.41/images/nbhtest/course:latest/json", "GET /images/{id}/json"},
		{"DELETE", "/v1.41/images/nbhtest/course:latest", "DELETE /images/{id}"},
		{"POST", "/v1.41/images/create", "POST /images/create"},
		{"HEAD", "/_ping", "HEAD /_ping"},
	} {
		var c Counter
		c.Count(httptest.NewRequest(tc.method, tc.path, nil))
		got := c.Take()
		if len(got) != 1 || got[tc.want] != 1 {
			t.Errorf("%s %s counted as %v, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
