package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/nbhosting/nbh-sync/containers"
	"github.com/nbhosting/nbh-sync/internal/jupytertest"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/naming"
)

// realFront puts a proxy in front of a real Jupyter server serving under
// alice's stable prefix, and returns the server as a browser behind the
// proxy sees it (session cookie, no token).
func realFront(t *testing.T, flavor jupytertest.Flavor) (*jupytertest.Server, *jupytertest.Server, *front, *client.Client) {
	t.Helper()
	return realFrontWith(t, flavor, Options{})
}

// realFrontWith is realFront with the proxy's options opts.
func realFrontWith(t *testing.T, flavor jupytertest.Flavor, opts Options) (*jupytertest.Server, *jupytertest.Server, *front, *client.Client) {
	t.Helper()
	cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
	srv := jupytertest.Start(t, cli, jupytertest.Options{Flavor: flavor, BaseURL: naming.Prefix("flot", "alice")})
	rt := Route{Key: Key{"flot", "alice"}, Host: "127.0.0.1:" + strconv.Itoa(srv.HostPort), BasePath: srv.BaseURL, Port: srv.HostPort}
	opts.Tokens, opts.Spawner = tokens(srv.Token), engineStarter{cli, srv.ContainerID, srv.BaseURL}
	f := newFront(t, opts)
	f.Routes().Set(rt)
	cookie := f.login(t, rt)
	k, v, _ := strings.Cut(cookie, ": ")
	via := srv.Via(f.URL+rt.BasePath, http.Header{k: {v}})
	return srv, via, f, cli
}

// engineStarter starts a stopped test server again, as the daemon's spawn
// would, and returns its route (the engine may publish another port).
type engineStarter struct {
	cli  *client.Client
	id   string
	base string
}

func (e engineStarter) Spawn(ctx context.Context, course, student string) (Route, error) {
	if err := e.cli.ContainerStart(ctx, e.id, container.StartOptions{}); err != nil {
		return Route{}, err
	}
	info, err := e.cli.ContainerInspect(ctx, e.id)
	if err != nil {
		return Route{}, err
	}
	b := info.NetworkSettings.Ports["8888/tcp"]
	if len(b) == 0 {
		return Route{}, fmt.Errorf("no published port")
	}
	port, _ := strconv.Atoi(b[0].HostPort)
	if err := containers.WaitReady(ctx, containers.ServerURL("127.0.0.1", port, e.base), time.Minute); err != nil {
		return Route{}, err
	}
	return Route{Key: Key{course, student}, Host: "127.0.0.1:" + b[0].HostPort, BasePath: e.base, Port: port}, nil
}

func TestRealJupyterKernelOverWebsocket(t *testing.T) {
	t.Parallel()
	_, via, f, _ := realFront(t, jupytertest.FlavorServer)
	ctx := t.Context()
	k, err := via.CreateKernel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := via.Execute(ctx, k.ID, "print(6*7)")
	if err != nil || out != "42\n" {
		t.Fatalf("Execute through the proxy = %q, %v", out, err)
	}
	if tr, _ := f.Traffic("flot", "alice"); tr.Last.IsZero() {
		t.Error("no traffic recorded")
	}
}

func TestRealJupyterNotebookSaves(t *testing.T) {
	t.Parallel()
	srv, via, _, _ := realFront(t, jupytertest.FlavorServer)
	ctx := t.Context()
	nb := map[string]any{"type": "notebook", "content": map[string]any{
		"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{},
		"cells": []any{map[string]any{"cell_type": "code", "id": "c1", "source": "print('saved through the front door')",
			"metadata": map[string]any{}, "outputs": []any{}, "execution_count": nil}},
	}}
	if err := via.Do(ctx, http.MethodPut, "api/contents/work.ipynb", nb, nil); err != nil {
		t.Fatalf("save: %v", err)
	}
	var got struct {
		Content struct {
			Cells []struct{ Source string } `json:"cells"`
		} `json:"content"`
	}
	if err := srv.Do(ctx, http.MethodGet, "api/contents/work.ipynb?content=1", nil, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Content.Cells) != 1 || got.Content.Cells[0].Source != "print('saved through the front door')" {
		t.Errorf("the server has %+v", got.Content)
	}
}

// TestRealJupyter100MB uploads 100 MB of random bytes through the contents
// API (base64 in JSON, as JupyterLab's upload does) and downloads them
// through /files/, comparing digests.
func TestRealJupyter100MB(t *testing.T) {
	t.Parallel()
	_, via, _, _ := realFront(t, jupytertest.FlavorServer)
	ctx := t.Context()
	data := make([]byte, 100<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	body, err := json.Marshal(map[string]any{"type": "file", "format": "base64", "content": base64.StdEncoding.EncodeToString(data)})
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, via.URL+"api/contents/big.bin", bytes.NewReader(body))
	via.Authorize(req.Header)
	req.Header.Set("Content-Type", "application/json")
	resp, err := via.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("upload: %s", resp.Status)
	}
	body = nil

	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, via.URL+"files/big.bin", nil)
	via.Authorize(req.Header)
	resp, err = via.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %s, %v", resp.Status, err)
	}
	if n != 100<<20 || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Errorf("downloaded %d bytes, digest equal %v", n, bytes.Equal(h.Sum(nil), want[:]))
	}
}

// TestRealJupyterStoppedServerComesBack: the student's server is stopped
// (as an idle pass does); the next page load through the front door starts
// it again behind the starting page, and the student's work is there.
func TestRealJupyterStoppedServerComesBack(t *testing.T) {
	t.Parallel()
	srv, via, f, cli := realFront(t, jupytertest.FlavorServer)
	ctx := t.Context()
	if err := via.Do(ctx, http.MethodPut, "api/contents/kept.txt", map[string]any{"type": "file", "format": "text", "content": "mine"}, nil); err != nil {
		t.Fatal(err)
	}
	timeout := 10
	if err := cli.ContainerStop(ctx, srv.ContainerID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	page := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, via.URL+"api/contents/kept.txt?content=1", nil)
		via.Authorize(req.Header)
		req.Header.Set("Accept", "text/html,application/json")
		resp, err := via.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	first := page()
	b, _ := io.ReadAll(first.Body)
	first.Body.Close()
	if first.StatusCode == http.StatusBadGateway || (first.StatusCode != http.StatusOK && !strings.Contains(string(b), "Starting your server")) {
		t.Fatalf("first page load after the stop: %s %q", first.Status, b)
	}
	var got struct{ Content string }
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp := page()
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("answer %q: %v", b, err)
			}
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("waiting for the server: %s %q", resp.Status, b)
		}
		time.Sleep(500 * time.Millisecond) // the starting page reloads every 2s; a script polls faster
	}
	if got.Content != "mine" {
		t.Errorf("kept.txt = %q after the restart", got.Content)
	}
	if rt, ok := f.Routes().Lookup(Key{"flot", "alice"}); !ok || rt.Host == "" {
		t.Errorf("route after the restart: %v, %v", rt, ok)
	}
}

// TestRealJupyterTokenNeverReachesTheBrowser loads the pages and API
// answers a browser loads, through the proxy, from every server
// application of both generations: no header or body carries the token,
// and the server's own login cookie (which it does set, see the direct
// request) is held back. A kernel that prints the token (as a student's
// code printing its environment would) sends it masked over its websocket.
func TestRealJupyterTokenNeverReachesTheBrowser(t *testing.T) {
	t.Parallel()
	for _, flavor := range jupytertest.Generations {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			srv, via, _, _ := realFront(t, flavor)
			ctx := t.Context()
			get := func(s *jupytertest.Server, path string) *http.Response {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
				s.Authorize(req.Header)
				req.Header.Set("Accept", "text/html")
				resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			direct := get(srv, "api/contents")
			direct.Body.Close()
			loginCookie := false
			for _, c := range direct.Cookies() {
				loginCookie = loginCookie || strings.HasPrefix(c.Name, "username-")
			}
			if !loginCookie {
				t.Fatalf("%s set no login cookie on a token request: this test no longer shows the proxy holds it back", flavor)
			}
			for _, path := range []string{"", "tree", "tree?token=" + srv.Token, "api", "api/contents", "api/kernelspecs", "login", "logout", "api/status", "static/../tree"} {
				resp := get(via, path)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if bytes.Contains(b, []byte(srv.Token)) {
					t.Errorf("%s: body carries the token", path)
				}
				for k, vs := range resp.Header {
					for _, v := range vs {
						if strings.Contains(v, srv.Token) || strings.Contains(v, "token=") {
							t.Errorf("%s: header %s: %q", path, k, v)
						}
						if k == "Set-Cookie" && strings.HasPrefix(v, "username-") {
							t.Errorf("%s: the server's login cookie reached the browser: %q", path, v)
						}
					}
				}
			}
			k, err := via.CreateKernel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The code does not hold the token; its output does.
			out, err := via.Execute(ctx, k.ID, fmt.Sprintf("print(bytes.fromhex(%q).decode())", hex.EncodeToString([]byte(srv.Token))))
			if want := strings.Repeat("*", len(srv.Token)) + "\n"; err != nil || out != want {
				t.Errorf("a kernel printing the token, through the front door: %q, %v; want %q", out, err, want)
			}
		})
	}
}

// TestRealJupyterOnItsOwnHost: with a host per student, a real server is
// used on its student's host — a kernel runs over its websocket (Jupyter
// checks the websocket's Origin against Host), a notebook saves — and its
// prefix answers nothing on another student's host.
func TestRealJupyterOnItsOwnHost(t *testing.T) {
	t.Parallel()
	for _, flavor := range jupytertest.Generations {
		t.Run(string(flavor), func(t *testing.T) {
			t.Parallel()
			cli := testenv.RequireDockerFor(t, jupytertest.RequireEnv)
			srv := jupytertest.Start(t, cli, jupytertest.Options{Flavor: flavor, BaseURL: naming.Prefix("flot", "alice")})
			rt := Route{Key: Key{"flot", "alice"}, Host: "127.0.0.1:" + strconv.Itoa(srv.HostPort), BasePath: srv.BaseURL, Port: srv.HostPort}
			f := newFront(t, Options{Tokens: tokens(srv.Token), HostTemplate: "{student}-{course}.nb.example.org"})
			f.Routes().Set(rt)
			u, _ := url.Parse(f.URL)
			host := f.HostFor(rt.Key) + ":" + u.Port()
			cookie := f.loginAt(t, host, rt)
			via := srv.ViaAt("http://"+host+rt.BasePath, http.Header{"Cookie": {CookieName + "=" + cookie.Value}}, u.Host)
			ctx := t.Context()

			k, err := via.CreateKernel(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := via.Execute(ctx, k.ID, "print(6*7)"); err != nil || out != "42\n" {
				t.Fatalf("Execute on alice's host = %q, %v", out, err)
			}
			nb := map[string]any{"type": "notebook", "content": map[string]any{"nbformat": 4, "nbformat_minor": 5, "metadata": map[string]any{}, "cells": []any{}}}
			if err := via.Do(ctx, http.MethodPut, "api/contents/host.ipynb", nb, nil); err != nil {
				t.Fatalf("save on alice's host: %v", err)
			}

			bobs := srv.ViaAt("http://"+f.HostFor(Key{"flot", "bob"})+":"+u.Port()+rt.BasePath, http.Header{"Cookie": {CookieName + "=" + cookie.Value}}, u.Host)
			if err := bobs.Do(ctx, http.MethodGet, "api/kernels", nil, nil); err == nil || !strings.Contains(err.Error(), "404") {
				t.Errorf("alice's prefix on bob's host = %v, want a 404", err)
			}
		})
	}
}
