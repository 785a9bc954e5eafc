package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// apiClient talks to a running daemon's HTTP API.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// daemon returns a client of the daemon at --api when one answers its
// /healthz quickly, else nil: the command then works directly.
func (g *globals) daemon(ctx context.Context) *apiClient {
	if g.api == "" || g.api == "none" {
		return nil
	}
	c := &apiClient{base: strings.TrimSuffix(g.api, "/"), http: &http.Client{}}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/healthz", nil)
	if err != nil {
		return nil
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	if b, err := os.ReadFile(g.apiTokenFile); err == nil {
		c.token = strings.TrimSpace(string(b))
	}
	g.log.Debug("using the running daemon", "api", c.base)
	return c
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
		var e struct {
			Error string `json:"error"`
		}
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
