package benchenv

import (
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
)

// GitHTTP is smart HTTP for the bare repositories under dir: git
// http-backend behind net/http/cgi, as a site's git server answers
// (https://host/NAME.git). Benchmarks serve their remotes with it so that
// the product fetches over the transport real sites use.
func GitHTTP(dir string) (http.Handler, error) {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return nil, fmt.Errorf("git --exec-path: %w", err)
	}
	return &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"},
	}, nil
}

// ServeGitHTTP serves GitHTTP(dir) on a loopback port in this process and
// returns the base URL (http://127.0.0.1:PORT) and a stop function.
func ServeGitHTTP(dir string) (base string, stop func(), err error) {
	h, err := GitHTTP(dir)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
