package jupytertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

// message is a Jupyter kernel message as the server's kernel websocket
// carries it (JSON text frames, one message each, with its channel).
type message struct {
	Header       header         `json:"header"`
	ParentHeader header         `json:"parent_header"`
	Metadata     map[string]any `json:"metadata"`
	Content      map[string]any `json:"content"`
	Channel      string         `json:"channel"`
	Buffers      []any          `json:"buffers"`
}

type header struct {
	MsgID    string `json:"msg_id,omitempty"`
	MsgType  string `json:"msg_type,omitempty"`
	Session  string `json:"session,omitempty"`
	Username string `json:"username,omitempty"`
	Version  string `json:"version,omitempty"`
	Date     string `json:"date,omitempty"`
}

// Execute runs code in a kernel through its websocket, as a student running
// a notebook cell does, and waits until the kernel is idle again. It returns
// what the code printed on stdout, or an error naming the Python exception.
// Opening the websocket is itself activity: the server asks the kernel for
// its info, which moves the kernel's last_activity.
func (s *Server) Execute(ctx context.Context, kernelID, code string) (string, error) {
	out, err := s.execute(ctx, kernelID, code, false)
	if err != nil {
		return "", fmt.Errorf("execute in kernel %s: %w", kernelID, err)
	}
	return out, nil
}

// StartExecution submits code to a kernel and returns once the kernel
// reports itself busy with it; the kernel goes on running the code after
// this returns (e.g. "import time; time.sleep(600)" makes a kernel that stays
// busy, which an activity probe must treat as active).
func (s *Server) StartExecution(ctx context.Context, kernelID, code string) error {
	if _, err := s.execute(ctx, kernelID, code, true); err != nil {
		return fmt.Errorf("start execution in kernel %s: %w", kernelID, err)
	}
	return nil
}

// Connect opens a kernel's websocket and leaves it open, as a browser tab
// showing a notebook does: the server counts it in the kernel's
// "connections" until it is closed (or stops answering pings). Nothing is
// sent on it; close it to go away.
func (s *Server) Connect(ctx context.Context, kernelID string) (io.Closer, error) {
	conn, _, err := s.dial(ctx, kernelID)
	if err != nil {
		return nil, fmt.Errorf("connect to kernel %s: %w", kernelID, err)
	}
	// Read and drop what the server sends, so that it never blocks on us
	// and its pings are answered (the websocket package answers them while
	// reading).
	go func() {
		var m message
		for websocket.JSON.Receive(conn, &m) == nil {
		}
	}()
	return conn, nil
}

func (s *Server) dial(ctx context.Context, kernelID string) (*websocket.Conn, string, error) {
	session := randomHex(16)
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, "", fmt.Errorf("server URL: %w", err)
	}
	origin := "http://" + u.Host
	loc := "ws://" + u.Host + u.Path + "api/kernels/" + kernelID + "/channels?session_id=" + session
	cfg, err := websocket.NewConfig(loc, origin)
	if err != nil {
		return nil, "", fmt.Errorf("websocket config: %w", err)
	}
	cfg.Header = http.Header{}
	s.Authorize(cfg.Header)
	// What cfg.DialContext does, but to ViaAt's address when it is set.
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", cmp.Or(s.addr, u.Host))
	if err != nil {
		return nil, "", fmt.Errorf("open websocket: %w", err)
	}
	conn, err := websocket.NewClient(cfg, raw)
	if err != nil {
		raw.Close()
		return nil, "", fmt.Errorf("open websocket: %w", err)
	}
	return conn, session, nil
}

func (s *Server) execute(ctx context.Context, kernelID, code string, returnWhenBusy bool) (string, error) {
	conn, session, err := s.dial(ctx, kernelID)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// Unblock reads when ctx ends: websocket.Conn reads ignore contexts.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	if returnWhenBusy {
		// jupyter_server before 2.0 takes a kernel's execution_state from
		// every status message on IOPub, whatever it answers, and on
		// opening a websocket it "nudges" the kernel with kernel_info
		// requests on shell and on control. ipykernel answers control in a
		// thread of its own, so that request's "idle" can land just after
		// the "busy" of a cell sent at once, and the server then lists a
		// running kernel idle until the cell ends. A cell run to its end
		// first on the same websocket lets the nudge's messages pass.
		if _, err := run(ctx, conn, session, "pass", false); err != nil {
			return "", fmt.Errorf("settle the new websocket: %w", err)
		}
	}
	return run(ctx, conn, session, code, returnWhenBusy)
}

// run sends code to the kernel on conn and reads until the kernel is idle
// again after it (or busy with it, when returnWhenBusy).
func run(ctx context.Context, conn *websocket.Conn, session, code string, returnWhenBusy bool) (string, error) {
	msgID := randomHex(16)
	req := message{
		Header: header{
			MsgID: msgID, MsgType: "execute_request", Session: session,
			Username: "student", Version: "5.3", Date: time.Now().UTC().Format(time.RFC3339Nano),
		},
		Metadata: map[string]any{},
		Content: map[string]any{
			"code": code, "silent": false, "store_history": true,
			"user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true,
		},
		Channel: "shell",
		Buffers: []any{},
	}
	if err := websocket.JSON.Send(conn, req); err != nil {
		return "", fmt.Errorf("send execute_request: %w", err)
	}

	var stdout strings.Builder
	var execErr error
	for {
		var m message
		if err := websocket.JSON.Receive(conn, &m); err != nil {
			return "", errors.Join(fmt.Errorf("read reply: %w", err), ctx.Err())
		}
		if m.ParentHeader.MsgID != msgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			if m.Content["name"] == "stdout" {
				text, _ := m.Content["text"].(string)
				stdout.WriteString(text)
			}
		case "error":
			execErr = fmt.Errorf("python %v: %v", m.Content["ename"], m.Content["evalue"])
		case "status":
			// The kernel's IOPub "idle" for our request is the last message
			// it sends about it; by then execute_reply has been sent too.
			switch m.Content["execution_state"] {
			case "busy":
				if returnWhenBusy {
					return "", nil
				}
			case "idle":
				return stdout.String(), execErr
			}
		}
	}
}

// SettledKernel creates a kernel and runs a trivial cell in it until the
// server lists it idle. The server's REST view of a fresh kernel can lag
// (listed "starting", or a missed "busy"), which makes a first long cell
// look idle; a test that needs a reliably busy kernel starts from here.
func (s *Server) SettledKernel(ctx context.Context, timeout time.Duration) (Kernel, error) {
	k, err := s.CreateKernel(ctx)
	if err != nil {
		return Kernel{}, err
	}
	deadline := time.Now().Add(timeout)
	for {
		if out, err := s.Execute(ctx, k.ID, "print(6*7)"); err == nil && out == "42\n" {
			if got, err := s.WaitKernelState(ctx, k.ID, "idle", time.Second); err == nil {
				return got, nil
			}
		}
		if time.Now().After(deadline) {
			return Kernel{}, fmt.Errorf("kernel %s not listed idle after a cell within %s", k.ID, timeout)
		}
	}
}

// WaitKernelState polls the kernel (untracked) until the server lists it
// in state, or timeout passes.
func (s *Server) WaitKernelState(ctx context.Context, id, state string, timeout time.Duration) (Kernel, error) {
	deadline := time.Now().Add(timeout)
	for {
		ks, err := s.KernelsUntracked(ctx)
		if err != nil {
			return Kernel{}, err
		}
		for _, k := range ks {
			if k.ID == id && k.ExecutionState == state {
				return k, nil
			}
		}
		if time.Now().After(deadline) {
			return Kernel{}, fmt.Errorf("kernel %s not listed %s within %s", id, state, timeout)
		}
		select {
		case <-ctx.Done():
			return Kernel{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// WaitConnections polls the kernel (untracked) until the server counts n
// open websockets on it, or timeout passes. A closed websocket is counted
// until the server notices it is gone.
func (s *Server) WaitConnections(ctx context.Context, id string, n int, timeout time.Duration) (Kernel, error) {
	deadline := time.Now().Add(timeout)
	var last Kernel
	for {
		ks, err := s.KernelsUntracked(ctx)
		if err != nil {
			return Kernel{}, err
		}
		for _, k := range ks {
			if k.ID == id {
				last = k
				if k.Connections == n {
					return k, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return Kernel{}, fmt.Errorf("kernel %s has %d connections, not %d, after %s", id, last.Connections, n, timeout)
		}
		select {
		case <-ctx.Done():
			return Kernel{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
