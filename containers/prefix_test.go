package containers

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter"
)

// TestSpawnWithPrefix: a command using {prefix} makes a server under the
// stable /u/{course}/{student}/ prefix; Spawn waits on that prefix, records
// it, and a later List reads it back, so the probe and the front door use
// the same prefix as the server.
func TestSpawnWithPrefix(t *testing.T) {
	var spec Spec
	eng := &fakeEngine{
		ImagesFn:  latestImage("sha256:v1"),
		InspectFn: notFound,
		CreateFn:  func(_ context.Context, s Spec) (string, error) { spec = s; return "new", nil },
		StartFn: func(context.Context, string) error {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.HostPort)))
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: fakejupyter.New("/u/flot/alice/", "", nil)}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			return nil
		},
	}
	co := testCourse()
	co.Container.Command = []string{"/fakejupyter", "--base-url={prefix}"}
	m := New(eng, nil, nil)
	got, err := m.Spawn(t.Context(), co, "alice", SpawnOptions{Root: t.TempDir(), UID: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	if got.BasePath != "/u/flot/alice/" || got.URL != "http://127.0.0.1:"+strconv.Itoa(got.Port)+"/u/flot/alice/" {
		t.Errorf("Spawn = %+v, want the stable prefix", got)
	}
	if !slices.Equal(spec.Cmd, []string{"/fakejupyter", "--base-url=/u/flot/alice/"}) || spec.Labels[LabelBasePath] != "/u/flot/alice/" {
		t.Errorf("spec = %+v", spec)
	}
}

func TestBasePathFromLabels(t *testing.T) {
	for _, tc := range []struct {
		name, label string
		port        int
		want        string
	}{
		{"recorded prefix", "/u/flot/alice/", 4000, "/u/flot/alice/"},
		{"recorded port", "/4000/", 4000, "/4000/"},
		{"none: nbhosting's /{port}/", "", 4000, "/4000/"},
		{"garbage is not trusted", "/../etc/", 4000, "/4000/"},
		{"another student's prefix is not a prefix", "/u/flot/alice/x/", 4000, "/4000/"},
		{"no port, no label", "", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := managedRaw("id", "running", "img", tc.port)
			if tc.port == 0 {
				r.Ports = nil
				delete(r.Labels, LabelPort)
			}
			if tc.label != "" {
				r.Labels[LabelBasePath] = tc.label
			}
			c, ok := classify(r, r.Created)
			if !ok || c.BasePath != tc.want {
				t.Errorf("BasePath = %q (ok %v), want %q", c.BasePath, ok, tc.want)
			}
		})
	}
}
