package server_test

import (
	"bufio"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/livelog"
	"github.com/nbhosting/nbh-sync/server"
)

func TestLiveBuildLog(t *testing.T) {
	logs := livelog.New()
	s, err := server.New(server.Config{Backend: fakeBackend(&calls{}), Builds: logs, Demo: &server.Demo{Student: "alice", UID: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	if code, _, body := do(t, ts, req{"GET", "/api/builds/log/nbhosting/minimal-notebook", "", ""}); code != 404 || !strings.Contains(body, "no build of nbhosting/minimal-notebook") {
		t.Errorf("log of no build = %d %s, want 404", code, body)
	}
	w := logs.Writer("nbhosting/minimal-notebook")
	w.Write([]byte("Step 1/4 : FROM nbhtest-jupyter2:latest\n"))

	_, _, running := do(t, ts, req{"GET", "/api/builds/running", "", ""})
	if !strings.Contains(running, `"image": "nbhosting/minimal-notebook"`) {
		t.Errorf("running builds = %s", running)
	}
	_, _, page := do(t, ts, req{"GET", "/", "", ""})
	if !strings.Contains(page, `data-log="/api/builds/log/nbhosting/minimal-notebook"`) || !strings.Contains(page, "Building now") {
		t.Error("the dashboard does not follow the running build")
	}
	if !strings.Contains(page, `data-course="flotpython"`) || !strings.Contains(page, "Open a demo student") {
		t.Error("the dashboard has no demo action with --demo")
	}

	// The stream gives each line as it is written, and ends with the build.
	resp, err := ts.Client().Get(ts.URL + "/api/builds/log/nbhosting/minimal-notebook")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "Step 1/4") {
		t.Fatalf("first line %q, %v", line, err)
	}
	w.Write([]byte("Step 2/4 : USER root\n"))
	if line, err = rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "Step 2/4") {
		t.Fatalf("second line %q, %v (not streamed while the build runs)", line, err)
	}
	w.Close()
	if rest, err := rd.ReadString('\n'); rest != "" || err == nil {
		t.Errorf("after the build: %q, %v; want the end of the stream", rest, err)
	}
}
