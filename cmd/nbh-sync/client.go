package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/rootdir"
	"github.com/nbhosting/nbh-sync/server"
)

// apiClient talks to a running daemon's HTTP API.
type apiClient struct {
	base  string
	where string // what the daemon is, for messages
	token string
	http  *http.Client
}

// daemon returns a client of the daemon the command should talk to, or nil
// when it works directly; it says which, on the log. The daemon is the one
// --api names (http://HOST:PORT or unix:PATH), else the one whose socket
// is under --root; with --api none, or no socket under --root, the command
// works directly. The token is only ever sent to a daemon named by --api or
// to a socket owned by the owner of --root that only its owner can open.
func (g *globals) daemon(ctx context.Context) (*apiClient, error) {
	var c *apiClient
	switch {
	case g.api == "none":
		g.log.Info("working directly (--api none)", "root", g.root)
		return nil, nil
	case g.api != "":
		var err error
		if c, err = newAPIClient(g.api); err != nil {
			return nil, err
		}
		if err := c.healthy(ctx); err != nil {
			return nil, fmt.Errorf("--api %s: no daemon answers: %w (--api none works directly)", g.api, err)
		}
	default:
		root, err := filepath.Abs(g.root)
		if err != nil {
			return nil, err
		}
		sock := rootdir.APISocket(root)
		err = server.CheckSocket(sock, root)
		if errors.Is(err, fs.ErrNotExist) {
			g.log.Info("no daemon runs on this root: working directly", "root", root)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("refusing the daemon socket: %w (--api none works directly)", err)
		}
		c, _ = newAPIClient("unix:" + sock)
		if err := c.healthy(ctx); err != nil {
			// A daemon that died leaves its socket: nothing answers.
			g.log.Warn("no daemon answers on the socket: working directly", "socket", sock, "err", err)
			return nil, nil
		}
	}
	if b, err := os.ReadFile(g.apiTokenFile); err == nil {
		c.token = strings.TrimSpace(string(b))
	}
	g.log.Info("talking to the daemon", "api", c.where)
	if g.configSet {
		g.log.Warn("--config is not used: the daemon follows its own config repo (--api none works directly with --config)", "api", c.where)
	}
	return c, nil
}

// newAPIClient returns a client of the daemon at addr: http(s)://HOST:PORT
// or unix:PATH.
func newAPIClient(addr string) (*apiClient, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		p = strings.TrimPrefix(p, "//")
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		}}
		return &apiClient{base: "http://localhost", where: "unix:" + p, http: &http.Client{Transport: tr}}, nil
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want http://HOST:PORT, https://HOST:PORT, unix:PATH or none", addr)
	}
	base := strings.TrimSuffix(addr, "/")
	return &apiClient{base: base, where: base, http: &http.Client{}}, nil
}

// healthy asks the daemon's /healthz, briefly.
func (c *apiClient) healthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %s", resp.Status)
	}
	return nil
}

// do calls the API; out, when not nil, receives the JSON answer.
func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("daemon API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("daemon API: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e api.Error
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error += " (the daemon wants the token of --api-token-file)"
		}
		return fmt.Errorf("daemon API %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("daemon API %s: %w", path, err)
	}
	return nil
}
