package jupytertest

import (
	"strconv"
	"testing"
)

func TestExpandPort(t *testing.T) {
	labels := map[string]string{"org.nbhosting.port": "{port}", "other": "x"}
	args := []string{"--a={port}", "--b"}
	o := Options{BaseURL: "/{port}/", Labels: labels, Args: args, HostPort: 31234}
	if !usesPort(o) || usesPort(Options{BaseURL: "/8123/", Labels: map[string]string{"a": "b"}}) {
		t.Fatal("usesPort wrong")
	}
	got := expandPort(o)
	if got.BaseURL != "/31234/" || got.Labels["org.nbhosting.port"] != "31234" || got.Labels["other"] != "x" || got.Args[0] != "--a=31234" || got.Args[1] != "--b" {
		t.Errorf("expandPort: %+v", got)
	}
	if labels["org.nbhosting.port"] != "{port}" || args[0] != "--a={port}" {
		t.Errorf("expandPort changed the caller's options: %v %v", labels, args)
	}
}

// "{port}" makes Start choose the host port first, as nbhosting's
// /{port}/ convention needs.
func TestStartPortPlaceholder(t *testing.T) {
	t.Parallel()
	cli := requireDocker(t)
	s := Start(t, cli, Options{Name: "nbhtest-prb-" + randomHex(4), BaseURL: "{port}", Labels: map[string]string{"org.nbhosting.port": "{port}"}})
	p := strconv.Itoa(s.HostPort)
	if s.BaseURL != "/"+p+"/" || s.URL != "http://127.0.0.1:"+p+"/"+p+"/" {
		t.Errorf("base URL %q, URL %q for host port %d", s.BaseURL, s.URL, s.HostPort)
	}
	info, err := cli.ContainerInspect(t.Context(), s.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Config.Labels["org.nbhosting.port"]; got != p {
		t.Errorf("port label %q, want %q", got, p)
	}
	if _, err := s.Status(t.Context()); err != nil {
		t.Error(err)
	}
}
