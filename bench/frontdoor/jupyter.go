package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"golang.org/x/net/websocket"

	"github.com/nbhosting/nbh-sync/naming"
)

// jupyter is a real Jupyter server in a container, for the latency figure
// against what students really reach.
type jupyter struct {
	cli   *client.Client
	id    string
	host  string
	token string
}

const jupyterImage = "nbhtest-jupyter:latest"

// startJupyter runs the test image's `jupyter server` under the stable
// prefix of bench/jupyter; nil, nil when the engine or the image is
// missing (the figure is then left out).
func startJupyter() (*jupyter, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, nil
	}
	if _, err := cli.ImageInspect(ctx, jupyterImage); err != nil {
		fmt.Fprintf(os.Stderr, "no %s (testimages/jupyter/build.sh): the real-Jupyter figure is left out\n", jupyterImage)
		return nil, nil
	}
	b := make([]byte, 8)
	rand.Read(b)
	j := &jupyter{cli: cli, token: hex.EncodeToString(b)}
	base := naming.Prefix("bench", "jupyter")
	created, err := cli.ContainerCreate(ctx, &container.Config{
		Image: jupyterImage, User: "jovyan", WorkingDir: "/home/jovyan",
		Cmd: []string{"jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--no-browser",
			"--ServerApp.token=" + j.token, "--ServerApp.base_url=" + base},
		ExposedPorts: nat.PortSet{"8888/tcp": {}},
	}, &container.HostConfig{PortBindings: nat.PortMap{"8888/tcp": {{HostIP: "127.0.0.1"}}}}, nil, nil, "nbhtest-bench-frontdoor-"+hex.EncodeToString(b[:4]))
	if err != nil {
		return nil, err
	}
	j.id = created.ID
	if err := cli.ContainerStart(ctx, j.id, container.StartOptions{}); err != nil {
		j.stop()
		return nil, err
	}
	info, err := cli.ContainerInspect(ctx, j.id)
	if err != nil || len(info.NetworkSettings.Ports["8888/tcp"]) == 0 {
		j.stop()
		return nil, fmt.Errorf("inspect the Jupyter container: %v", err)
	}
	j.host = "127.0.0.1:" + info.NetworkSettings.Ports["8888/tcp"][0].HostPort
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+j.host+base+"api/status", nil)
		req.Header.Set("Authorization", "token "+j.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return j, nil
			}
		}
		select {
		case <-ctx.Done():
			j.stop()
			return nil, fmt.Errorf("jupyter server not ready: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (j *jupyter) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = j.cli.ContainerRemove(ctx, j.id, container.RemoveOptions{Force: true})
	j.cli.Close()
}

// kernel is a kernel of the real server with one websocket held open to it
// directly, one through the front door and, when it runs, one through
// configurable-http-proxy (chp).
type kernel struct {
	direct, via, chp *websocket.Conn
	// Each connection is its own session: a second connection of one
	// session makes Jupyter close the first as stale.
	sessions map[*websocket.Conn]string
}

// openKernel starts a kernel and opens its channels each way (through
// configurable-http-proxy at chpAddr unless it is "").
func (j *jupyter) openKernel(front, cookie, chpAddr string) (*kernel, error) {
	base := naming.Prefix("bench", "jupyter")
	req, _ := http.NewRequest(http.MethodPost, "http://"+j.host+base+"api/kernels", strings.NewReader(`{"name":"python3"}`))
	req.Header.Set("Authorization", "token "+j.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var k struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&k); err != nil || k.ID == "" {
		return nil, fmt.Errorf("start a kernel: %s, %v", resp.Status, err)
	}
	kn := &kernel{sessions: map[*websocket.Conn]string{}}
	dial := func(host string, h http.Header) (*websocket.Conn, error) {
		session := randomHex()
		cfg, err := websocket.NewConfig("ws://"+host+base+"api/kernels/"+k.ID+"/channels?session_id="+session, "http://"+host)
		if err != nil {
			return nil, err
		}
		cfg.Header = h
		c, err := cfg.DialContext(context.Background())
		if err == nil {
			kn.sessions[c] = session
		}
		return c, err
	}
	if kn.direct, err = dial(j.host, http.Header{"Authorization": {"token " + j.token}}); err != nil {
		return nil, fmt.Errorf("kernel websocket, direct: %w", err)
	}
	if kn.via, err = dial(strings.TrimPrefix(front, "http://"), http.Header{"Cookie": {cookie}}); err != nil {
		kn.direct.Close()
		return nil, fmt.Errorf("kernel websocket, through the front door: %w", err)
	}
	if chpAddr != "" {
		// The hub's proxy passes credentials on as they come.
		if kn.chp, err = dial(chpAddr, http.Header{"Authorization": {"token " + j.token}}); err != nil {
			kn.direct.Close()
			kn.via.Close()
			return nil, fmt.Errorf("kernel websocket, through %s: %w", chpBinary, err)
		}
	}
	// The first execution of a fresh kernel is slow: not timed.
	if _, err := kn.execute(kn.direct, "1"); err != nil {
		kn.close()
		return nil, err
	}
	return kn, nil
}

func (k *kernel) close() {
	k.direct.Close()
	k.via.Close()
	if k.chp != nil {
		k.chp.Close()
	}
}

// execute runs code and returns when its execute_reply arrives: what a
// student's Shift-Enter waits for.
func (k *kernel) execute(c *websocket.Conn, code string) (time.Duration, error) {
	id := randomHex()
	msg := map[string]any{
		"header": map[string]any{"msg_id": id, "msg_type": "execute_request", "session": k.sessions[c], "username": "bench",
			"version": "5.3", "date": time.Now().UTC().Format(time.RFC3339Nano)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "buffers": []any{}, "channel": "shell",
		"content": map[string]any{"code": code, "silent": false, "store_history": false, "user_expressions": map[string]any{},
			"allow_stdin": false, "stop_on_error": true},
	}
	t0 := time.Now()
	if err := websocket.JSON.Send(c, msg); err != nil {
		return 0, err
	}
	for {
		var m struct {
			Header struct {
				MsgType string `json:"msg_type"`
			}
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content struct{ Status string }
		}
		if err := websocket.JSON.Receive(c, &m); err != nil {
			return 0, err
		}
		if m.Header.MsgType == "execute_reply" && m.ParentHeader.MsgID == id {
			if m.Content.Status != "ok" {
				return 0, fmt.Errorf("execute %q: %s", code, m.Content.Status)
			}
			return time.Since(t0), nil
		}
	}
}

func randomHex() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
