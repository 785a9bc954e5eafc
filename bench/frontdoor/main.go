// Command frontdoor measures the students' front door (package proxy) beside
// direct access to the same server, in the same run. See ../README.md.
//
//	go run ./bench/frontdoor [-requests 2000] [-roundtrips 2000] [-mb 100] [-websockets 1000]
//
// The proxy runs in a child process (this program again), as it runs in the
// daemon: proxy.New behind an http.Server. The server behind it is a small
// fake in this process: a 100-byte answer, a websocket echo, a large
// download. Direct and proxied measurements alternate, so that noise on the
// machine falls on both; JupyterHub's configurable-http-proxy, when
// installed, is timed in the same alternation. Then the child's resident
// memory is read from /proc before and after 1,000 idle websockets are
// opened through it.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/websocket"

	"github.com/nbhosting/nbh-sync/naming"
	"github.com/nbhosting/nbh-sync/proxy"
)

var useJupyter bool

const (
	childEnv = "NBH_BENCH_FRONTDOOR_CHILD"
	base     = "/u/bench/alice/"
)

func main() {
	if os.Getenv(childEnv) != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "bench/frontdoor child:", err)
			os.Exit(1)
		}
		return
	}
	requests := flag.Int("requests", 2000, "small requests timed each way")
	roundtrips := flag.Int("roundtrips", 2000, "websocket round trips timed each way")
	mb := flag.Int("mb", 100, "size of the download, MB")
	rounds := flag.Int("rounds", 3, "downloads each way")
	nws := flag.Int("websockets", 1000, "idle websockets held open for the memory figure")
	flag.BoolVar(&useJupyter, "jupyter", true, "also time a real Jupyter server (nbhtest-jupyter:latest) when the image is there")
	flag.Parse()
	if err := run(*requests, *roundtrips, *mb, *rounds, *nws); err != nil {
		fmt.Fprintln(os.Stderr, "bench/frontdoor:", err)
		os.Exit(1)
	}
}

// child serves the proxy on a free port with the routes given as arguments
// (course/student@host:port#token), prints its address and a launch path
// per route on one line, and serves until stdin closes.
func child() error {
	key := make([]byte, 32)
	rand.Read(key)
	toks := tokens{}
	p, err := proxy.New(proxy.Options{Key: key, Tokens: toks})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The floor any proxy pays on this machine: a bare
	// httputil.ReverseProxy to the first route's server, in the same
	// process, with nothing else to do.
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	out := []string{ln.Addr().String(), bareLn.Addr().String()}
	for i, a := range os.Args[1:] {
		who, rest, _ := strings.Cut(a, "@")
		host, tok, _ := strings.Cut(rest, "#")
		course, student, _ := strings.Cut(who, "/")
		rt := proxy.Route{Key: proxy.Key{Course: course, Student: student}, Host: host, BasePath: naming.Prefix(course, student)}
		p.Routes().Set(rt)
		toks[rt.Key] = tok
		out = append(out, p.Launch(rt))
		if i == 0 {
			bare := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
			go (&http.Server{Handler: bare, ReadHeaderTimeout: 10 * time.Second}).Serve(bareLn)
		}
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println(strings.Join(out, " "))
	io.Copy(io.Discard, os.Stdin)
	return nil
}

type tokens map[proxy.Key]string

func (t tokens) TokenFor(c, s string) string { return t[proxy.Key{Course: c, Student: s}] }

func run(nreq, nrt, mb, rounds, nws int) error {
	// The server: a fake Jupyter enough for the figures.
	small := make([]byte, 100)
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	mux := http.NewServeMux()
	mux.HandleFunc(base+"small", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	mux.HandleFunc(base+"big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	mux.Handle(base+"ws", websocket.Handler(func(c *websocket.Conn) { io.Copy(c, c) }))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go (&http.Server{Handler: mux}).Serve(ln)
	direct := "http://" + ln.Addr().String()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	// A token, as every server has in production: the front door masks
	// it in every answer and websocket frame.
	routes := []string{"bench/alice@" + ln.Addr().String() + "#" + randomHex()}
	var jup *jupyter
	if useJupyter {
		if jup, err = startJupyter(); err != nil {
			return err
		}
	}
	if jup != nil { // nil without the image
		defer jup.stop()
		routes = append(routes, "bench/jupyter@"+jup.host+"#"+jup.token)
	}
	cmd := exec.Command(self, routes...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	fields := strings.Fields(line)
	addr, bareAddr, launch := fields[0], fields[1], fields[2]
	front, bareURL := "http://"+addr, "http://"+bareAddr

	jar, _ := cookiejar.New(nil)
	viaClient := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	directClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	resp, err := viaClient.Get(front + launch)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 404 {
		return fmt.Errorf("launch: %s", resp.Status)
	}
	u, _ := url.Parse(front + base)
	cookie := jar.Cookies(u)
	if len(cookie) == 0 {
		return errors.New("launch gave no session cookie")
	}
	cookieHeader := cookie[0].Name + "=" + cookie[0].Value

	fmt.Printf("%s, proxy pid %d\n", strings.TrimSpace(goVersion()), cmd.Process.Pid)

	// JupyterHub's proxy, to the same servers: the fake one by default, the
	// real Jupyter under its prefix.
	chpRoutes := map[string]string{}
	if jup != nil {
		chpRoutes[naming.Prefix("bench", "jupyter")] = jup.host
	}
	ch, err := startCHP(ln.Addr().String(), chpRoutes)
	if err != nil {
		return err
	}
	if ch != nil {
		defer ch.stop()
	}
	chpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	// vsCHP holds the front door's figures over configurable-http-proxy's:
	// times (below 1: the front door is faster) and throughputs (above 1).
	vsCHP := map[string]float64{}

	// 0. A real Jupyter server (GET api/status), when there is one.
	jupRatio := map[int]float64{} // api/status p50, p99; a cell's round trip at -50, -99
	var jupTput float64
	if jup != nil {
		jc := &http.Client{Jar: jar}
		if resp, err := jc.Get(front + fields[3]); err != nil {
			return err
		} else {
			resp.Body.Close()
		}
		jdirect := &http.Client{}
		jbase := naming.Prefix("bench", "jupyter")
		// getWays GETs path of the real server directly, through the
		// front door and through the hub's proxy (which passes
		// credentials on as they come).
		getWays := func(path string) []func() (time.Duration, error) {
			ways := []func() (time.Duration, error){
				func() (time.Duration, error) {
					return timedGet(jdirect, "http://"+jup.host+jbase+path, "token "+jup.token)
				},
				func() (time.Duration, error) { return timedGet(jc, front+jbase+path, "") },
			}
			if ch != nil {
				ways = append(ways, func() (time.Duration, error) {
					return timedGet(chpClient, "http://"+ch.addr+jbase+path, "token "+jup.token)
				})
			}
			return ways
		}
		ways := getWays("api/status")
		t, err := alternate(nreq/4, 50, ways...)
		if err != nil {
			return err
		}
		dj, vj := t[0], t[1]
		jupRatio[50], jupRatio[99] = ratio(pct(vj, 50), pct(dj, 50)), ratio(pct(vj, 99), pct(dj, 99))
		fmt.Printf("real Jupyter api/status, %d each: direct p50 %v p99 %v; front door p50 %v p99 %v%s\n", len(dj), pct(dj, 50), pct(dj, 99), pct(vj, 50), pct(vj, 99), chpLatency(ch.times(t)))
		if ch != nil {
			vsCHP["jupyter_p50"], vsCHP["jupyter_p99"] = ratio(pct(vj, 50), pct(ch.times(t), 50)), ratio(pct(vj, 99), pct(ch.times(t), 99))
		}

		// A cell's round trip: execute_request to execute_reply on one
		// kernel, over a websocket held open each way.
		ju, _ := url.Parse(front + jbase)
		jcookie := jar.Cookies(ju)
		if len(jcookie) == 0 {
			return errors.New("no session cookie for the Jupyter server")
		}
		chpAddr := ""
		if ch != nil {
			chpAddr = ch.addr
		}
		k, err := jup.openKernel(front, jcookie[0].Name+"="+jcookie[0].Value, chpAddr)
		if err != nil {
			return err
		}
		ways = []func() (time.Duration, error){
			func() (time.Duration, error) { return k.execute(k.direct, "1") },
			func() (time.Duration, error) { return k.execute(k.via, "1") },
		}
		if k.chp != nil {
			ways = append(ways, func() (time.Duration, error) { return k.execute(k.chp, "1") })
		}
		if t, err = alternate(nrt/4, 20, ways...); err != nil {
			return err
		}
		dk, vk := t[0], t[1]
		jupRatio[-50], jupRatio[-99] = ratio(pct(vk, 50), pct(dk, 50)), ratio(pct(vk, 99), pct(dk, 99))
		fmt.Printf("real Jupyter cell round trip, %d each: direct p50 %v p99 %v; front door p50 %v p99 %v%s\n", len(dk), pct(dk, 50), pct(dk, 99), pct(vk, 50), pct(vk, 99), chpLatency(ch.times(t)))
		if ch != nil {
			vsCHP["cell_p50"], vsCHP["cell_p99"] = ratio(pct(vk, 50), pct(ch.times(t), 50)), ratio(pct(vk, 99), pct(ch.times(t), 99))
		}

		// A download from the server's /files/: a file the kernel writes.
		if _, err := k.execute(k.direct, fmt.Sprintf("import os\nwith open('big.bin', 'wb') as f: f.write(os.urandom(%d))", mb<<20)); err != nil {
			return err
		}
		k.close()
		ways = getWays("files/big.bin")
		if t, err = alternate(rounds, 0, ways...); err != nil {
			return err
		}
		jupTput = mbps(mb<<20, t[1]) / mbps(mb<<20, t[0])
		fmt.Printf("real Jupyter download of %d MB from /files/, median of %d: direct %.0f MB/s; front door %.0f MB/s%s\n", mb, rounds, mbps(mb<<20, t[0]), mbps(mb<<20, t[1]), chpTput(mb<<20, ch.times(t)))
		if ch != nil {
			vsCHP["jupyter_tput"] = mbps(mb<<20, t[1]) / mbps(mb<<20, ch.times(t))
		}
	}

	// 1. Small requests, alternating.
	bareClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	ways := []func() (time.Duration, error){
		func() (time.Duration, error) { return timedGet(directClient, direct+base+"small", "") },
		func() (time.Duration, error) { return timedGet(viaClient, front+base+"small", "") },
		func() (time.Duration, error) { return timedGet(bareClient, bareURL+base+"small", "") },
	}
	if ch != nil {
		ways = append(ways, func() (time.Duration, error) { return timedGet(chpClient, "http://"+ch.addr+base+"small", "") })
	}
	t, err := alternate(nreq, 100, ways...)
	if err != nil {
		return err
	}
	dl, vl, bl := t[0], t[1], t[2]
	dp50, dp99, vp50, vp99 := pct(dl, 50), pct(dl, 99), pct(vl, 50), pct(vl, 99)
	fmt.Printf("request latency, %d each: direct p50 %v p99 %v; front door p50 %v p99 %v; bare ReverseProxy p50 %v p99 %v%s\n", nreq, dp50, dp99, vp50, vp99, pct(bl, 50), pct(bl, 99), chpLatency(ch.times(t)))
	if ch != nil {
		vsCHP["p50"], vsCHP["p99"] = ratio(vp50, pct(ch.times(t), 50)), ratio(vp99, pct(ch.times(t), 99))
	}

	// 2. Websocket round trips.
	dialWS := func(host string, hdr http.Header) (*websocket.Conn, error) {
		cfg, err := websocket.NewConfig("ws://"+host+base+"ws", "http://"+host)
		if err != nil {
			return nil, err
		}
		cfg.Header = hdr
		return cfg.DialContext(context.Background())
	}
	dws, err := dialWS(ln.Addr().String(), http.Header{})
	if err != nil {
		return err
	}
	vws, err := dialWS(addr, http.Header{"Cookie": {cookieHeader}})
	if err != nil {
		return err
	}
	bws, err := dialWS(bareAddr, http.Header{})
	if err != nil {
		return err
	}
	var cws *websocket.Conn
	if ch != nil {
		if cws, err = dialWS(ch.addr, http.Header{}); err != nil {
			return err
		}
		defer cws.Close()
	}
	rtt := func(c *websocket.Conn) (time.Duration, error) {
		msg := []byte(`{"header":{"msg_type":"execute_request"},"content":{"code":"1+1"}}`)
		buf := make([]byte, len(msg))
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		_, err := io.ReadFull(c, buf)
		return time.Since(t0), err
	}
	ways = []func() (time.Duration, error){
		func() (time.Duration, error) { return rtt(dws) },
		func() (time.Duration, error) { return rtt(vws) },
		func() (time.Duration, error) { return rtt(bws) },
	}
	if cws != nil {
		ways = append(ways, func() (time.Duration, error) { return rtt(cws) })
	}
	if t, err = alternate(nrt, 100, ways...); err != nil {
		return err
	}
	dr, vr, br := t[0], t[1], t[2]
	dws.Close()
	vws.Close()
	bws.Close()
	fmt.Printf("websocket round trip, %d each: direct p50 %v p99 %v; front door p50 %v p99 %v; bare ReverseProxy p50 %v p99 %v%s\n", nrt, pct(dr, 50), pct(dr, 99), pct(vr, 50), pct(vr, 99), pct(br, 50), pct(br, 99), chpLatency(ch.times(t)))
	if ch != nil {
		vsCHP["ws_p50"], vsCHP["ws_p99"] = ratio(pct(vr, 50), pct(ch.times(t), 50)), ratio(pct(vr, 99), pct(ch.times(t), 99))
	}

	// 3. Downloads.
	n := mb << 20
	big := "big?n=" + strconv.Itoa(n)
	ways = []func() (time.Duration, error){
		func() (time.Duration, error) { return timedGet(directClient, direct+base+big, "") },
		func() (time.Duration, error) { return timedGet(viaClient, front+base+big, "") },
		func() (time.Duration, error) { return timedGet(bareClient, bareURL+base+big, "") },
	}
	if ch != nil {
		ways = append(ways, func() (time.Duration, error) { return timedGet(chpClient, "http://"+ch.addr+base+big, "") })
	}
	if t, err = alternate(rounds, 0, ways...); err != nil {
		return err
	}
	dTput, vTput, bTput := mbps(n, t[0]), mbps(n, t[1]), mbps(n, t[2])
	fmt.Printf("download %d MB, median of %d: direct %.0f MB/s; front door %.0f MB/s; bare ReverseProxy %.0f MB/s%s\n", mb, rounds, dTput, vTput, bTput, chpTput(n, ch.times(t)))
	if ch != nil {
		vsCHP["tput"] = vTput / mbps(n, ch.times(t))
	}

	// 4. Memory with idle websockets.
	time.Sleep(time.Second) // let the child's heap settle after the downloads
	rssIdle, err := rssKB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	var held []*websocket.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range nws {
		c, err := dialWS(addr, http.Header{"Cookie": {cookieHeader}})
		if err != nil {
			return fmt.Errorf("websocket %d: %w", i, err)
		}
		held = append(held, c)
	}
	// One round trip on the last proves they all went through.
	if _, err := rtt(held[len(held)-1]); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rssWS, err := rssKB(cmd.Process.Pid)
	if err != nil {
		return err
	}
	perWS := float64(rssWS-rssIdle) / float64(nws)
	fmt.Printf("proxy RSS: %d kB idle, %d kB with %d open idle websockets (%.1f kB each)\n", rssIdle, rssWS, nws, perWS)

	fmt.Printf("RESULT frontdoor p50_ratio=%.2f p99_ratio=%.2f jupyter_p50_ratio=%.2f jupyter_p99_ratio=%.2f jupyter_cell_p50_ratio=%.2f jupyter_cell_p99_ratio=%.2f jupyter_tput_ratio=%.2f ws_p50_ratio=%.2f ws_p99_ratio=%.2f tput_ratio=%.2f bare_p50_ratio=%.2f bare_ws_p50_ratio=%.2f bare_tput_ratio=%.2f rss_idle_kb=%d rss_ws_kb=%d websockets=%d per_ws_kb=%.1f added_p50=%v\n",
		ratio(vp50, dp50), ratio(vp99, dp99), jupRatio[50], jupRatio[99], jupRatio[-50], jupRatio[-99], jupTput, ratio(pct(vr, 50), pct(dr, 50)), ratio(pct(vr, 99), pct(dr, 99)), vTput/dTput,
		ratio(pct(bl, 50), pct(dl, 50)), ratio(pct(br, 50), pct(dr, 50)), bTput/dTput, rssIdle, rssWS, nws, perWS, vp50-dp50)
	if ch != nil {
		// The front door's figures over configurable-http-proxy's.
		fmt.Print("RESULT frontdoor_vs_chp")
		for _, k := range slices.Sorted(maps.Keys(vsCHP)) {
			fmt.Printf(" %s_ratio=%.2f", k, vsCHP[k])
		}
		fmt.Println()
	}
	return nil
}

// alternate runs each of ways warm+n times, one after another, and
// returns the times of each after the first warm rounds. The order turns
// round by round, so that no way always runs right after another: a
// process that sat idle meanwhile wakes up slower.
func alternate(n, warm int, ways ...func() (time.Duration, error)) ([][]time.Duration, error) {
	t := make([][]time.Duration, len(ways))
	for i := range warm + n {
		for j := range ways {
			k := (i + j) % len(ways)
			d, err := ways[k]()
			if err != nil {
				return nil, err
			}
			if i >= warm {
				t[k] = append(t[k], d)
			}
		}
	}
	return t, nil
}

// chpLatency is the part of a line on configurable-http-proxy's times, if
// it ran.
func chpLatency(ds []time.Duration) string {
	if len(ds) == 0 {
		return ""
	}
	return fmt.Sprintf("; configurable-http-proxy p50 %v p99 %v", pct(ds, 50), pct(ds, 99))
}

// chpTput is the part of a line on configurable-http-proxy's throughput
// in downloads of n bytes, if it ran.
func chpTput(n int, ds []time.Duration) string {
	if len(ds) == 0 {
		return ""
	}
	return fmt.Sprintf("; configurable-http-proxy %.0f MB/s", mbps(n, ds))
}

// mbps is the median throughput of downloads of n bytes that took ds.
func mbps(n int, ds []time.Duration) float64 {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(n) / d.Seconds() / 1e6
	}
	return median(xs)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// timedGet reads url whole, with auth as its Authorization when set.
func timedGet(c *http.Client, url, auth string) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return time.Since(t0), nil
}

func rssKB(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, errors.New("no VmRSS")
}

func goVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return "?"
	}
	return string(out)
}
