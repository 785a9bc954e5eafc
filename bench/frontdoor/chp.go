package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// chp is JupyterHub's proxy, configurable-http-proxy, run as a child on
// loopback: what students reach a Jupyter server through on a hub, timed
// beside the front door.
type chp struct {
	cmd  *exec.Cmd
	addr string // host:port it proxies on
}

const chpBinary = "configurable-http-proxy"

// startCHP starts configurable-http-proxy with fallback as its default
// target and a route from each prefix of routes to its host:port, as the
// hub adds them (its REST API); nil, nil when it is not installed.
func startCHP(fallback string, routes map[string]string) (*chp, error) {
	bin, err := exec.LookPath(chpBinary)
	if err != nil {
		fmt.Fprintf(os.Stderr, "no %s (Debian: node-configurable-http-proxy): its figures are left out\n", chpBinary)
		return nil, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	c := &chp{addr: "127.0.0.1:" + port}
	c.cmd = exec.Command(bin, "--ip", "127.0.0.1", "--port", port, "--api-ip", "127.0.0.1", "--api-port", apiPort,
		"--default-target", "http://"+fallback, "--log-level", "warn")
	// Debian installs the proxy's modules in /usr/share/nodejs, which a
	// Node.js not from Debian does not search.
	c.cmd.Env = append(os.Environ(), "CONFIGPROXY_AUTH_TOKEN="+token, "NODE_PATH="+strings.Trim(os.Getenv("NODE_PATH")+":/usr/share/nodejs", ":"))
	c.cmd.Stdout, c.cmd.Stderr = os.Stderr, os.Stderr
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", chpBinary, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := "http://127.0.0.1:" + apiPort + "/api/routes"
	if err := c.call(ctx, http.MethodGet, api, token, ""); err != nil {
		c.stop()
		return nil, err
	}
	for prefix, host := range routes {
		if err := c.call(ctx, http.MethodPost, api+strings.TrimSuffix(prefix, "/"), token, `{"target":"http://`+host+`"}`); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// call makes a request of the API, waiting for the API to come up.
func (c *chp) call(ctx context.Context, method, url, token, body string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			return fmt.Errorf("%s: %s %s: %s", chpBinary, method, url, resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: API not up: %w", chpBinary, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// times picks configurable-http-proxy's times from those of alternate,
// where it is the last way when it runs (c is not nil).
func (c *chp) times(t [][]time.Duration) []time.Duration {
	if c == nil {
		return nil
	}
	return t[len(t)-1]
}

func (c *chp) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// freePort returns a loopback port free a moment ago, for a program that
// takes a port number rather than a listener.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}
