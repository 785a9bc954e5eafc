package imageref

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFamiliar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"flot:latest", "flot:latest"},
		{"docker.io/library/flot:latest", "flot:latest"},
		{"localhost/flot:latest", "flot:latest"},
		{"docker.io/nbhosting/scipy-notebook:latest", "nbhosting/scipy-notebook:latest"},
		{"localhost/nbhosting/scipy-notebook:0d2b", "nbhosting/scipy-notebook:0d2b"},
		{"registry.example.org:5000/flot:latest", "registry.example.org:5000/flot:latest"},
		{"localhost:5000/flot:latest", "localhost:5000/flot:latest"},
	}
	for _, tt := range tests {
		if got := Familiar(tt.in); got != tt.want {
			t.Errorf("Familiar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestListRaced(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`Error response from daemon: locating image with ID "3273331daf1f": image not known`), true},
		{errors.New("Error response from daemon: image not known"), false},
		{errors.New(`docker image list: Error response from daemon: locating item named "manifest" for image with ID "2f723a1eddc7" (consider removing the image to resolve the issue): file does not exist`), true},
		{errors.New("open /etc/x: file does not exist"), false},
		{errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		if got := ListRaced(tt.err); got != tt.want {
			t.Errorf("ListRaced(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestListAgain(t *testing.T) {
	raced := errors.New(`Error response from daemon: reading image "a705": locating image with ID "a705": image not known`)
	if !ListAgain(t.Context(), raced, 0) {
		t.Error("a raced list is not asked again")
	}
	if ListAgain(t.Context(), raced, ListRetries) {
		t.Error("asked again past ListRetries")
	}
	if ListAgain(t.Context(), errors.New("connection refused"), 0) {
		t.Error("another error is asked again")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if ListAgain(ctx, raced, 0) {
		t.Error("asked again after the context ended")
	}
}

func TestBuildRaced(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		// podman (buildah) looking through its cache.
		{errors.New("checking if cached image exists from a previous build: getting top layer info: layer not known"), true},
		// Docker's classic builder, as CI saw it.
		{errors.New("failed to export image: failed to set parent sha256:a56e7d69: unknown parent image ID sha256:a56e7d69"), true},
		{errors.New("The command '/bin/sh -c pip install x' returned a non-zero code: 1"), false},
		{errors.New("pull access denied for nbhtest-base, repository does not exist"), false},
	}
	for _, tt := range tests {
		if got := BuildRaced(tt.err); got != tt.want {
			t.Errorf("BuildRaced(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestRepository(t *testing.T) {
	a, b := Repository("/srv/a", "python"), Repository("/srv/b", "python")
	if a == b {
		t.Fatalf("two sites share the repository %q", a)
	}
	if a != Repository("/srv/a", "python") {
		t.Errorf("Repository is not stable")
	}
	if got := Repository("", "python"); got != "python" {
		t.Errorf("no site: got %q, want python", got)
	}
	// A namespaced image keeps its own path under the site's namespace,
	// and the result is a reference podman and Docker list the same way.
	got := Repository("/srv/a", "nbhosting/scipy-notebook")
	if want := Namespace("/srv/a") + "/nbhosting/scipy-notebook"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if Familiar("docker.io/"+got+":latest") != got+":latest" || Familiar("localhost/"+got+":latest") != got+":latest" {
		t.Errorf("Familiar does not give %q back", got)
	}
	if ns := Namespace("/srv/a"); len(ns) != len("nbh-")+10 || strings.ContainsAny(ns, ".:") {
		t.Errorf("Namespace = %q: want nbh- and 10 hex digits, no registry-like . or :", ns)
	}
}
