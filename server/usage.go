package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/csv"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nbhosting/nbh-sync/api"
)

// UsageSource gives the site's usage figures (package usage keeps them).
type UsageSource interface {
	// Usage returns the figures of the last days days (today included) of
	// course ("" for every course).
	Usage(ctx context.Context, course string, days int) (api.Usage, error)
}

// MaxUsageDays bounds ?days=.
const MaxUsageDays = 3660

func (s *Server) usageRoutes() {
	if s.cfg.Usage == nil {
		return
	}
	s.mux.HandleFunc("GET /api/usage", s.usage(false))
	s.mux.HandleFunc("GET /api/usage.csv", s.usage(true))
}

// authorized reports whether r carries the API token: the figures of a
// course are no secret, the names of its students with the largest
// workspaces are.
func (s *Server) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	return s.cfg.Token != "" && len(h) > len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) &&
		subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.Token)) == 1
}

func (s *Server) usage(asCSV bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		days := 90
		if v := q.Get("days"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxUsageDays {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("days %q: want 1..%d", v, MaxUsageDays))
				return
			}
			days = n
		}
		ctx, cancel := s.ctx(r)
		defer cancel()
		u, err := s.cfg.Usage.Usage(ctx, q.Get("course"), days)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !s.authorized(r) {
			for i := range u.Days {
				u.Days[i].Top = nil
			}
		}
		if u.Days == nil {
			u.Days = []api.UsageDay{}
		}
		if !asCSV {
			writeJSON(w, http.StatusOK, u)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="nbh-usage.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"day", "course", "students", "sessions", "notebooks", "kernel_hours", "peak_servers", "cpu_hours", "mem_peak_bytes", "disk_bytes"})
		for _, d := range u.Days {
			_ = cw.Write([]string{d.Day, d.Course, strconv.Itoa(d.Students), strconv.Itoa(d.Sessions), strconv.Itoa(d.Notebooks),
				strconv.FormatFloat(d.KernelHours, 'f', 3, 64), strconv.Itoa(d.PeakServers), strconv.FormatFloat(d.CPUHours, 'f', 3, 64),
				strconv.FormatInt(d.MemPeakBytes, 10), strconv.FormatInt(d.DiskBytes, 10)})
		}
		cw.Flush()
	}
}

// The dashboard draws usage as inline SVG, made here: no script, nothing
// fetched (the page's policy allows neither), readable on a phone (the
// charts scale to the width; the viewBox keeps their proportions).

// palette colours the courses of a chart, in order.
var palette = []string{"#0969da", "#1f883d", "#bf3989", "#9a6700", "#8250df", "#cf222e", "#1b7c83", "#57606a"}

// usageCharts renders the usage section: each course's active students
// over the span, servers over the last day with use (per quarter hour),
// and the disk of each course's workspaces.
func usageCharts(u api.Usage) template.HTML {
	if len(u.Days) == 0 {
		return ""
	}
	var courses []string
	byCourse := map[string][]api.UsageDay{}
	for _, d := range u.Days {
		if _, ok := byCourse[d.Course]; !ok {
			courses = append(courses, d.Course)
		}
		byCourse[d.Course] = append(byCourse[d.Course], d)
	}
	slices.Sort(courses)
	days := dayList(u.From, u.To)
	var b bytes.Buffer

	// Active students per day.
	series := map[string][]float64{}
	for _, c := range courses {
		v := make([]float64, len(days))
		for _, d := range byCourse[c] {
			if i := slices.Index(days, d.Day); i >= 0 {
				v[i] = float64(d.Students)
			}
		}
		series[c] = v
	}
	fmt.Fprintf(&b, `<figure class="chart" id="usage-students"><figcaption>Active students per day, %s to %s</figcaption>`, u.From, u.To)
	lineChart(&b, courses, series, days[0], days[len(days)-1], "students")
	b.WriteString(`</figure>`)

	// Servers over the last day with use.
	last := u.Days[len(u.Days)-1].Day
	slots := map[string][]float64{}
	var withServers []string
	for _, c := range courses {
		for _, d := range byCourse[c] {
			if d.Day == last && len(d.Servers) > 0 {
				v := make([]float64, len(d.Servers))
				for i, n := range d.Servers {
					v[i] = float64(n)
				}
				slots[c] = v
				withServers = append(withServers, c)
			}
		}
	}
	if len(withServers) > 0 {
		fmt.Fprintf(&b, `<figure class="chart" id="usage-servers"><figcaption>Servers over the day, %s (UTC, per quarter hour)</figcaption>`, last)
		lineChart(&b, withServers, slots, "00:00", "24:00", "servers")
		b.WriteString(`</figure>`)
	}

	// Disk by course, at each course's latest look.
	type bar struct {
		course string
		bytes  int64
	}
	var bars []bar
	for _, c := range courses {
		ds := byCourse[c]
		for i := len(ds) - 1; i >= 0; i-- {
			if ds[i].DiskBytes > 0 {
				bars = append(bars, bar{c, ds[i].DiskBytes})
				break
			}
		}
	}
	if len(bars) > 0 {
		b.WriteString(`<figure class="chart" id="usage-disk"><figcaption>Disk of the workspaces, by course</figcaption>`)
		var top int64
		for _, x := range bars {
			top = max(top, x.bytes)
		}
		const W, row = 600, 22
		fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="disk of the workspaces by course">`, W, row*len(bars)+4)
		for i, x := range bars {
			w := float64(x.bytes) / float64(top) * 330
			y := i*row + 2
			fmt.Fprintf(&b, `<text x="150" y="%d" text-anchor="end" class="lbl">%s</text>`, y+15, template.HTMLEscapeString(x.course))
			fmt.Fprintf(&b, `<rect x="158" y="%d" width="%.1f" height="16" fill="%s"><title>%s: %s</title></rect>`, y+2, math.Max(w, 1), palette[i%len(palette)],
				template.HTMLEscapeString(x.course), bytesText(x.bytes))
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="lbl">%s</text>`, 164+w, y+15, bytesText(x.bytes))
		}
		b.WriteString(`</svg></figure>`)
	}
	return template.HTML(b.String()) // every name in it was escaped
}

// lineChart draws one line per name, a legend, the y axis's top value and
// the x axis's ends.
func lineChart(b *bytes.Buffer, names []string, series map[string][]float64, xFrom, xTo, unit string) {
	rows := (len(names) + 3) / 4 // of the legend, four names a row
	const W, left, right, top = 600, 40, 10, 10
	H, bottom := 200+16*(rows-1), 40+16*(rows-1)
	n, maxY := 0, 1.0
	for _, name := range names {
		n = max(n, len(series[name]))
		for _, v := range series[name] {
			maxY = max(maxY, v)
		}
	}
	maxY = niceCeil(maxY)
	fmt.Fprintf(b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s">`, W, H, unit)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, H-bottom, W-right, H-bottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="axis"/>`, left, top, left, H-bottom)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" class="lbl">%g</text>`, left-4, top+10, maxY)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" class="lbl">0</text>`, left-4, H-bottom)
	fmt.Fprintf(b, `<text x="%d" y="%d" class="lbl">%s</text>`, left, H-bottom+14, xFrom)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" class="lbl">%s</text>`, W-right, H-bottom+14, xTo)
	for i, name := range names {
		v := series[name]
		var pts []string
		for j, y := range v {
			x := float64(left)
			if n > 1 {
				x += float64(j) * float64(W-left-right) / float64(n-1)
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, float64(H-bottom)-y/maxY*float64(H-top-bottom)))
		}
		color := palette[i%len(palette)]
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`, color, strings.Join(pts, " "), template.HTMLEscapeString(name))
		lx := left + (i%4)*140
		ly := H - 8 - (rows-1-i/4)*16
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="lbl">%s</text>`, lx, ly-9, color, lx+14, ly, template.HTMLEscapeString(name))
	}
	b.WriteString(`</svg>`)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// dayList is every day from from to to (2006-01-02), in order.
func dayList(from, to string) []string {
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil || t.Before(f) {
		return []string{from}
	}
	var out []string
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}
