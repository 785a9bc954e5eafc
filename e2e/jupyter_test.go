//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/websocket"

	"github.com/nbhosting/nbh-sync/internal/fakejupyter/fjtest"
)

// student is a student's browser talking to their spawned Jupyter server
// through its REST API and kernel websockets (what internal/jupytertest
// does for servers it starts itself).
type student struct {
	url   string // base URL, ending in "/"
	token string
	http  *http.Client
}

func newStudent(url, token string) *student {
	return &student{url: url, token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

type kernelInfo struct {
	ID             string    `json:"id"`
	LastActivity   time.Time `json:"last_activity"`
	ExecutionState string    `json:"execution_state"`
}

func (s *student) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// putFile saves a text file through the contents API, as the editor does.
func (s *student) putFile(ctx context.Context, path, text string) error {
	return s.do(ctx, http.MethodPut, "api/contents/"+path, map[string]string{"type": "file", "format": "text", "content": text}, nil)
}

// getFile reads a text file through the contents API.
func (s *student) getFile(ctx context.Context, path string) (string, error) {
	var f struct {
		Content string `json:"content"`
	}
	err := s.do(ctx, http.MethodGet, "api/contents/"+path+"?type=file&format=text", nil, &f)
	return f.Content, err
}

func (s *student) createKernel(ctx context.Context) (string, error) {
	var k kernelInfo
	err := s.do(ctx, http.MethodPost, "api/kernels", map[string]string{"name": "python3"}, &k)
	return k.ID, err
}

// kernels lists the kernels without counting as activity.
func (s *student) kernels(ctx context.Context) ([]kernelInfo, error) {
	var ks []kernelInfo
	err := s.do(ctx, http.MethodGet, "api/kernels?no_track_activity=1", nil, &ks)
	return ks, err
}

func (s *student) interrupt(ctx context.Context, id string) error {
	return s.do(ctx, http.MethodPost, "api/kernels/"+id+"/interrupt", nil, nil)
}

type wsHeader struct {
	MsgID    string `json:"msg_id,omitempty"`
	MsgType  string `json:"msg_type,omitempty"`
	Session  string `json:"session,omitempty"`
	Username string `json:"username,omitempty"`
	Version  string `json:"version,omitempty"`
	Date     string `json:"date,omitempty"`
}

type wsMessage struct {
	Header       wsHeader       `json:"header"`
	ParentHeader wsHeader       `json:"parent_header"`
	Metadata     map[string]any `json:"metadata"`
	Content      map[string]any `json:"content"`
	Channel      string         `json:"channel"`
	Buffers      []any          `json:"buffers"`
}

// run executes code in a kernel as a notebook cell does. With untilBusy it
// returns once the kernel reports itself busy with it (the code goes on
// running); else it waits for the kernel to be idle and returns stdout.
func (s *student) run(ctx context.Context, kernelID, code string, untilBusy bool) (string, error) {
	base := strings.TrimPrefix(s.url, "http://")
	host, _, _ := strings.Cut(base, "/")
	cfg, err := websocket.NewConfig("ws://"+base+"api/kernels/"+kernelID+"/channels?session_id="+fjtest.Suffix(), "http://"+host)
	if err != nil {
		return "", err
	}
	cfg.Header = http.Header{"Authorization": {"token " + s.token}}
	conn, err := cfg.DialContext(ctx)
	if err != nil {
		return "", fmt.Errorf("open kernel websocket: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	id := fjtest.Suffix() + fjtest.Suffix()
	req := wsMessage{
		Header: wsHeader{MsgID: id, MsgType: "execute_request", Session: fjtest.Suffix(), Username: "student",
			Version: "5.3", Date: time.Now().UTC().Format(time.RFC3339Nano)},
		Metadata: map[string]any{},
		Content: map[string]any{"code": code, "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
		Channel: "shell", Buffers: []any{},
	}
	if err := websocket.JSON.Send(conn, req); err != nil {
		return "", fmt.Errorf("send execute_request: %w", err)
	}
	var out strings.Builder
	for {
		var m wsMessage
		if err := websocket.JSON.Receive(conn, &m); err != nil {
			return "", errors.Join(fmt.Errorf("read kernel message: %w", err), ctx.Err())
		}
		if m.ParentHeader.MsgID != id {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			text, _ := m.Content["text"].(string)
			out.WriteString(text)
		case "error":
			return "", fmt.Errorf("python %v: %v", m.Content["ename"], m.Content["evalue"])
		case "status":
			switch m.Content["execution_state"] {
			case "busy":
				if untilBusy {
					return "", nil
				}
			case "idle":
				return out.String(), nil
			}
		}
	}
}

// settledKernel opens a notebook: it creates a kernel and runs a trivial
// cell until the server lists the kernel idle. A kernel the server lists
// "starting" may be busy or not (the server's own subscription to a new
// kernel can miss its first messages, see internal/jupytertest): a real
// student's first cell comes seconds after the kernel starts, so the test
// waits for the server to have caught up, as that student would.
func (s *student) settledKernel(ctx context.Context) (string, error) {
	id, err := s.createKernel(ctx)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := s.run(ctx, id, "print(6 * 7)", false)
		if err == nil && out == "42\n" {
			for range 50 {
				if st, _ := s.kernelState(ctx, id); st == "idle" {
					return id, nil
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			st, _ := s.kernelState(ctx, id)
			return "", fmt.Errorf("kernel %s not listed idle after a cell (out %q, err %v, listed %q)", id, out, err, st)
		}
	}
}

// startBusy starts a long computation in kernel id and waits until the
// server lists the kernel busy.
func (s *student) startBusy(ctx context.Context, id string) error {
	if _, err := s.run(ctx, id, "import time; time.sleep(3600)", true); err != nil {
		return err
	}
	var st string
	for range 100 {
		if st, _ = s.kernelState(ctx, id); st == "busy" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kernel %s listed %q, not busy", id, st)
}

func (s *student) kernelState(ctx context.Context, id string) (string, error) {
	ks, err := s.kernels(ctx)
	for _, k := range ks {
		if k.ID == id {
			return k.ExecutionState, nil
		}
	}
	return "", err
}
