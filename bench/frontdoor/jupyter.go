package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/nbhosting/nbh-sync/containers"
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
	base := containers.Prefix("bench", "jupyter")
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
