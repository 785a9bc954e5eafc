package server_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/server/servertest"
	"github.com/nbhosting/nbh-sync/usage"
)

// storeUsage serves a usage.Store as the daemon does, up to a fixed today.
type storeUsage struct {
	s     *usage.Store
	today time.Time
}

func (u storeUsage) Usage(_ context.Context, course string, days int) (api.Usage, error) {
	to := usage.DayOf(u.today)
	from := to - usage.Day(days-1)
	out := api.Usage{From: from.String(), To: to.String(), Days: u.s.Query(course, from, to), Students: map[string]int{}}
	for _, d := range out.Days {
		if _, ok := out.Students[d.Course]; !ok {
			out.Students[d.Course] = u.s.Students(d.Course, from, to)
		}
	}
	return out, nil
}

// simulatedTerm fills a store with 90 days ending today of a site of 1,000
// students in four courses: weekday-heavy sessions that grow over the
// term, notebooks, kernels sampled every 15 minutes, and the workspaces'
// disk at the end of each day.
func simulatedTerm(t testing.TB, today time.Time) *usage.Store {
	t.Helper()
	s, err := usage.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	courses := []string{"algo", "data-science", "intro-python", "numerics"}
	first := usage.DayOf(today).Time().AddDate(0, 0, -89)
	type visit struct {
		course, student string
		from, to        time.Time
		kernels         int
	}
	disk := map[string]map[string]int64{}
	for day := range 90 {
		t0 := first.AddDate(0, 0, day)
		p := 0.10 + 0.25*float64(day)/90
		if wd := t0.Weekday(); wd == time.Saturday || wd == time.Sunday {
			p /= 5
		}
		var visits []visit
		for i := range 1000 {
			c := courses[i%len(courses)]
			if rng.Float64() >= p*(1+0.3*float64(i%len(courses))) {
				continue
			}
			st := fmt.Sprintf("student%04d", i)
			from := t0.Add(time.Duration(8*60+rng.IntN(10*60)) * time.Minute)
			visits = append(visits, visit{c, st, from, from.Add(time.Duration(20+rng.IntN(100)) * time.Minute), 1 + rng.IntN(2)})
			s.Session(c, st, from)
			for range rng.IntN(3) {
				s.NotebookOpened(c, st, from.Add(2*time.Minute))
			}
			if disk[c] == nil {
				disk[c] = map[string]int64{}
			}
			disk[c][st] += int64(rng.IntN(200_000))
		}
		for tick := t0; tick.Before(t0.Add(24 * time.Hour)); tick = tick.Add(15 * time.Minute) {
			var servers []usage.Server
			for _, v := range visits {
				if !tick.Before(v.from) && tick.Before(v.to) {
					servers = append(servers, usage.Server{Course: v.course, Student: v.student, Kernels: v.kernels, CPU: 30 * time.Second, MemBytes: 150 << 20})
				}
			}
			s.Sample(tick, servers)
		}
		for c, sizes := range disk {
			s.Disk(t0.Add(23*time.Hour), c, sizes)
		}
	}
	return s
}

// The usage API answers JSON and CSV of the figures; only a caller with the
// token sees the names of the students with the largest workspaces; the
// latency of a 90-day answer over a simulated term is reported.
func TestUsageAPI(t *testing.T) {
	today := time.Now().UTC()
	src := storeUsage{s: simulatedTerm(t, today), today: today}
	srv, err := server.New(server.Config{Backend: fakeBackend(&calls{}), Token: token, Usage: src})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	get := func(path string, auth bool) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, buf
	}
	for _, tc := range []struct {
		name    string
		path    string
		auth    bool
		code    int
		days    int
		withTop bool
	}{
		{"90 days", "/api/usage", false, 200, 90 * 4, false},
		{"one course", "/api/usage?course=algo&days=30", false, 200, 30, false},
		{"names with the token", "/api/usage?days=7", true, 200, 7 * 4, true},
		{"bad days", "/api/usage?days=0", false, 400, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.path, tc.auth)
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.code != 200 {
				return
			}
			var u api.Usage
			if err := json.Unmarshal(body, &u); err != nil {
				t.Fatal(err)
			}
			// Weekends of a slow start may leave a course a day without use.
			if len(u.Days) < tc.days*9/10 || len(u.Days) > tc.days {
				t.Errorf("%d course-days, want about %d", len(u.Days), tc.days)
			}
			top := false
			for _, d := range u.Days {
				top = top || len(d.Top) > 0
			}
			if top != tc.withTop {
				t.Errorf("names of the top students shown: %v, want %v", top, tc.withTop)
			}
		})
	}
	resp, body := get("/api/usage.csv?days=90", false)
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) < 300 || rows[0][0] != "day" || len(rows[1]) != 10 {
		t.Errorf("CSV: %v, %s, %d rows, first %v", err, resp.Header.Get("Content-Type"), len(rows), rows[:min(2, len(rows))])
	}
	// The latency of the 90-day answer, for the README (reported, not
	// asserted: the machine is shared).
	const n = 50
	began := time.Now()
	for range n {
		get("/api/usage?days=90", false)
	}
	t.Logf("GET /api/usage?days=90 over a term of 1,000 students in 4 courses: %s per call (mean of %d)", (time.Since(began) / n).Round(10*time.Microsecond), n)
}

// The dashboard draws usage: each course's active students over 90 days,
// the servers over the last day, the disk by course — inline SVG, drawn
// in chromium, on a desktop and on a phone, with no console error and no
// sideways scrolling. The screenshots go to the artifact dir (docs/img
// when NBH_ARTIFACTS says so).
func TestUsageChartsInBrowser(t *testing.T) {
	ctx := testenv.Browser(t, 120*time.Second)
	today := time.Now().UTC()
	be := fakeBackend(&calls{})
	be.StatusFunc = func(context.Context) (api.Status, error) { return servertest.SampleStatus(today), nil }
	srv, err := server.New(server.Config{Backend: be, Token: token, Refresh: time.Hour, Usage: storeUsage{s: simulatedTerm(t, today), today: today}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	var con console
	con.collect(ctx)
	shots := map[string][]byte{}
	for _, vp := range []struct {
		name string
		do   chromedp.Action[chromedp.Void]
	}{
		{"usage-desktop.png", chromedp.EmulateViewport(1280, 900)},
		{"usage-phone.png", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)},
	} {
		if err := chromedp.Do(ctx, vp.do, testenv.Navigate(hs.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#usage svg`))); err != nil {
			t.Fatalf("%s: %v", vp.name, err)
		}
		drawn, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const f = id => document.querySelector("#" + id);
			const lines = f("usage-students").querySelectorAll("polyline").length;
			const day = f("usage-servers").querySelectorAll("polyline").length;
			const bars = f("usage-disk").querySelectorAll("rect").length;
			const w = f("usage-students").querySelector("svg").getBoundingClientRect().width;
			return lines + " " + day + " " + bars + " " + (w > 100);
		})()`))
		if err != nil || drawn != "4 4 4 true" {
			t.Errorf("%s: drawn %q (%v), want 4 course lines, 4 server lines, 4 disk bars, a visible chart", vp.name, drawn, err)
		}
		overflow, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
		if err != nil || overflow > 0 {
			t.Errorf("%s: scrolls sideways by %vpx (%v)", vp.name, overflow, err)
		}
		if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(`#usage`))); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#usage`)))
		if err != nil {
			t.Fatalf("%s: %v", vp.name, err)
		}
		shots[vp.name] = png
	}
	if p := con.problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
	dir := testenv.ArtifactDir(t)
	for name, png := range shots {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
}
