package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// wsFrame is one websocket frame, as a server sends it (never masked).
type wsFrame struct {
	fin     bool
	op      byte
	payload string
}

func encodeFrames(fs []wsFrame) []byte {
	var b []byte
	for _, f := range fs {
		b = append(frameHeader(b, f.fin, f.op, len(f.payload)), f.payload...)
	}
	return b
}

func decodeFrames(t *testing.T, b []byte) []wsFrame {
	t.Helper()
	var fs []wsFrame
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatalf("truncated header: % x", b)
		}
		if b[0]&0x70 != 0 || b[1]&0x80 != 0 {
			t.Fatalf("reserved bits or a mask on a server frame: % x", b[:2])
		}
		size, n := uint64(b[1]&0x7f), 2
		switch size {
		case 126:
			size, n = uint64(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			size, n = binary.BigEndian.Uint64(b[2:10]), 10
		}
		if uint64(len(b)-n) < size {
			t.Fatalf("frame of %d bytes, %d left", size, len(b)-n)
		}
		fs = append(fs, wsFrame{fin: b[0]&0x80 != 0, op: b[0] & 0x0f, payload: string(b[n : n+int(size)])})
		b = b[n+int(size):]
	}
	return fs
}

// events is what a browser makes of frames: each control frame as it
// comes, each data message when whole ("text:…", "binary:…").
func events(t *testing.T, fs []wsFrame) []string {
	t.Helper()
	var out []string
	var msg strings.Builder
	var op byte
	in := false
	for _, f := range fs {
		switch {
		case f.op >= 0x8:
			if !f.fin {
				t.Fatalf("fragmented control frame %+v", f)
			}
			out = append(out, fmt.Sprintf("control %x:%s", f.op, f.payload))
			continue
		case f.op == 0 && !in, f.op != 0 && in:
			t.Fatalf("frame %+v out of sequence", f)
		case f.op != 0:
			op, in = f.op, true
			msg.Reset()
		}
		msg.WriteString(f.payload)
		if f.fin {
			out = append(out, fmt.Sprintf("data %x:%s", op, msg.String()))
			in = false
		}
	}
	if in {
		t.Fatalf("a message never ended")
	}
	return out
}

func TestFrameRedactorFragments(t *testing.T) {
	stars := strings.Repeat("*", len(secret))
	big := strings.Repeat("x", 70000) + secret + strings.Repeat("y", 300)
	half := len(secret) / 2
	for _, tc := range []struct {
		name string
		in   []wsFrame
		// same: the frames pass as they are (but for the masking).
		same bool
	}{
		{"one frame", []wsFrame{{true, 1, "JUPYTER_TOKEN=" + secret + "\n"}}, true},
		{"binary and a large frame", []wsFrame{{true, 2, secret}, {true, 1, big}}, true},
		{"control frames", []wsFrame{{true, 0x9, "ping"}, {true, 1, "a"}, {true, 0x8, "\x03\xe8bye"}}, true},
		{"secret split across two fragments", []wsFrame{{false, 1, "TOKEN=" + secret[:half]}, {true, 0, secret[half:] + " end"}}, false},
		{"a fragment per byte", func() []wsFrame {
			var fs []wsFrame
			s := "env: " + secret + "!"
			for i := range len(s) {
				op := byte(0)
				if i == 0 {
					op = 1
				}
				fs = append(fs, wsFrame{i == len(s)-1, op, s[i : i+1]})
			}
			return fs
		}(), false},
		{"ping between fragments, empty fragments", []wsFrame{{false, 2, ""}, {false, 0, secret[:3]}, {true, 0x9, "p"},
			{false, 0, secret[3:]}, {true, 0, ""}, {true, 1, "after"}}, false},
		{"secret across fragments of a large message", []wsFrame{{false, 1, big[:70010]}, {false, 0, big[70010:]}, {true, 0, "z"}}, false},
	} {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}, {"halves", iotest.HalfReader}} {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				in := encodeFrames(tc.in)
				conn := struct {
					io.Reader
					io.Writer
					io.Closer
				}{rd.wrap(bytes.NewReader(in)), io.Discard, io.NopCloser(nil)}
				var out bytes.Buffer
				if _, err := newFrameRedactor(conn, secret).WriteTo(&out); err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(out.Bytes(), []byte(secret[:half])) || bytes.Contains(out.Bytes(), []byte(secret[half:])) {
					t.Errorf("half the secret reached the browser")
				}
				got := events(t, decodeFrames(t, out.Bytes()))
				want := events(t, tc.in)
				for i := range want {
					want[i] = strings.ReplaceAll(want[i], secret, stars)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("browser saw\n%.300q\nwant\n%.300q", got, want)
				}
				if tc.same {
					masked := bytes.ReplaceAll(in, []byte(secret), []byte(stars))
					if !bytes.Equal(out.Bytes(), masked) {
						t.Errorf("unfragmented frames were framed anew")
					}
				}
			})
		}
	}
}

// writes records each Write as it came.
type writes struct{ got chan string }

func (w writes) Write(p []byte) (int, error) { w.got <- string(p); return len(p), nil }

// Frames read together go out in one write, headers unmasked (a length
// byte may be a letter of the secret); a frame that has arrived is sent
// without waiting for the next.
func TestFrameRedactorJoinsFrames(t *testing.T) {
	stars := strings.Repeat("*", len(secret))
	// Its length byte is the secret's first letter, its payload the rest.
	straddle := wsFrame{true, 1, secret[1:] + strings.Repeat("z", int(secret[0])-len(secret)+1)}
	in := []wsFrame{{true, 1, "busy"}, {true, 1, "TOKEN=" + secret}, straddle, {true, 0x9, "ping"}, {true, 2, strings.Repeat("r", 300)}}
	raw := encodeFrames(in)
	if !bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the straddling frame does not straddle")
	}
	pr, pw := io.Pipe()
	conn := struct {
		io.Reader
		io.Writer
		io.Closer
	}{pr, io.Discard, io.NopCloser(nil)}
	w := writes{got: make(chan string, 10)}
	done := make(chan error, 1)
	go func() { _, err := newFrameRedactor(conn, secret).WriteTo(w); done <- err }()

	pw.Write(raw)
	want := bytes.Replace(raw, []byte("TOKEN="+secret), []byte("TOKEN="+stars), 1)
	if got := <-w.got; got != string(want) {
		t.Errorf("first write: %d bytes, want the %d of all five frames; differ at %d", len(got), len(want), firstDiff(got, string(want)))
	}
	last := encodeFrames([]wsFrame{{true, 1, "idle"}})
	pw.Write(last)
	select {
	case got := <-w.got:
		if got != string(last) {
			t.Errorf("second write %q, want %q", got, last)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a frame that arrived waits for more")
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
