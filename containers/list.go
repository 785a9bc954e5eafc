package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// List returns every container in one engine call.
//
// On the engine's socket (the usual case: Docker's or podman's) the answer
// is decoded one container at a time as it arrives: the SDK's
// ContainerList holds the whole answer and every container's full summary
// at once (mounts, networks, all labels), about 3 kB a container — a
// transient 30 MB at 10,000 containers, three times what the pass keeps.
// Over TCP, where the SDK alone knows whether it speaks TLS, List asks the
// SDK.
func (d *Docker) List(ctx context.Context) ([]Raw, error) {
	if u, err := client.ParseHostURL(d.cli.DaemonHost()); err != nil || u.Scheme != "unix" {
		cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		out := make([]Raw, 0, len(cs))
		var in interner
		for i := range cs {
			out = append(out, in.rawOf(&cs[i]))
		}
		return out, nil
	}
	out, err := d.listStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return out, nil
}

// listStream is GET /containers/json?all=1 through the SDK client's own
// HTTP client (its socket dialer, and any transport a caller gave it),
// decoded with a streaming decoder.
func (d *Docker) listStream(ctx context.Context) ([]Raw, error) {
	if err := d.Negotiate(ctx); err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "http", Host: client.DummyHost, Path: "/containers/json", RawQuery: "all=1"}
	if v := d.cli.ClientVersion(); v != "" {
		u.Path = path.Join("/v"+strings.TrimPrefix(v, "v"), u.Path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.cli.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct{ Message string }
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			return nil, fmt.Errorf("engine answered %s: %s", resp.Status, e.Message)
		}
		return nil, fmt.Errorf("engine answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	dec := json.NewDecoder(resp.Body)
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil, fmt.Errorf("engine's answer is not a list (%v, %v)", t, err)
	}
	var (
		out []Raw
		in  interner
	)
	for dec.More() {
		var c summary
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("decode the engine's answer: %w", err)
		}
		out = append(out, in.raw(&c))
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("decode the engine's answer: %w", err)
	}
	return out, nil
}

// summary is the part of the engine's summary of a container that List
// reads. Decoding into it, not the SDK's container.Summary, skips the
// mounts, networks and host config of every container, which nothing
// reads: a third of a command's CPU time at 1,000 containers went there.
type summary struct {
	ID      string `json:"Id"`
	Names   []string
	ImageID string
	State   string
	Status  string
	Created int64
	Labels  map[string]string
	Ports   []port
}

// port is one published port of a summary.
type port struct {
	Type        string
	PrivatePort uint16
	PublicPort  uint16
}

// interner keeps one copy of the strings many containers repeat (image
// IDs, states, label values such as the course and the site), and only the
// labels nbh-sync reads: a container also carries every label of its
// image, which the pass never looks at.
type interner map[string]string

func (in *interner) s(v string) string {
	if *in == nil {
		*in = interner{}
	}
	if c, ok := (*in)[v]; ok {
		return c
	}
	(*in)[v] = v
	return v
}

// rawOf is raw of the SDK's summary of a container.
func (in *interner) rawOf(c *container.Summary) Raw {
	sum := summary{ID: c.ID, Names: c.Names, ImageID: c.ImageID, State: string(c.State), Status: c.Status, Created: c.Created, Labels: c.Labels}
	for _, p := range c.Ports {
		sum.Ports = append(sum.Ports, port{Type: p.Type, PrivatePort: p.PrivatePort, PublicPort: p.PublicPort})
	}
	return in.raw(&sum)
}

func (in *interner) raw(c *summary) Raw {
	r := Raw{
		ID: c.ID, ImageID: in.s(c.ImageID), EngineState: in.s(c.State), Status: in.s(c.Status),
		Created: time.Unix(c.Created, 0),
	}
	if len(c.Names) > 0 {
		r.Name = strings.TrimPrefix(c.Names[0], "/")
	}
	for _, k := range readLabels {
		if v, ok := c.Labels[k]; ok {
			if r.Labels == nil {
				r.Labels = make(map[string]string, len(readLabels))
			}
			r.Labels[k] = in.s(v)
		}
	}
	for _, p := range c.Ports {
		if p.Type == "tcp" && p.PublicPort != 0 {
			if r.Ports == nil {
				r.Ports = map[int]int{}
			}
			r.Ports[int(p.PrivatePort)] = int(p.PublicPort)
		}
	}
	return r
}
