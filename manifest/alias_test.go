package manifest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stringBomb is a valid-looking courses.yaml whose env values all alias
// one long string: n × len copies once expanded (150 KB gave 600 MB before
// aliases had a budget).
func stringBomb(n, length int) string {
	var b strings.Builder
	b.WriteString("version: 1\ncourses:\n  a:\n    repo: /srv/a\n    container:\n      env:\n")
	b.WriteString("        s: &s \"" + strings.Repeat("lol", length/3) + "\"\n")
	for i := range n {
		fmt.Fprintf(&b, "        k%d: *s\n", i)
	}
	return b.String()
}

// aliasBomb is a courses.yaml whose container command nests levels lists,
// each aliasing the previous one width times: width^levels nodes once
// expanded, from a file of about width*levels*6 bytes.
func aliasBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("version: 1\ncourses:\n  a:\n    repo: /srv/a\n    container:\n      command:\n")
	b.WriteString("        - &l0 [" + strings.TrimSuffix(strings.Repeat("lol, ", width), ", ") + "]\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "        - &l%d [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), width), ", "))
	}
	return b.String()
}

func TestParseRefusesAliasBomb(t *testing.T) {
	for _, tc := range []struct {
		name, src string
	}{
		{"nested lists", aliasBomb(9, 9)},
		{"nested lists 110KB", aliasBomb(400, 40)},
		{"nested lists 240KB", aliasBomb(800, 45)},
		{"long string 150KB", stringBomb(8000, 9000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, _, err := Parse("courses.yaml", []byte(src))
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("alias bomb accepted")
			}
			// The refusal names the file, the line of an alias and why.
			if !strings.Contains(err.Error(), "courses.yaml:") || !strings.Contains(err.Error(), "aliases expand to more than") {
				t.Fatalf("err = %v", err)
			}
			if p := err.(Errors)[0]; p.Line < 7 {
				t.Errorf("problem at line %d, want the line of an alias (≥ 7): %v", p.Line, p)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes refused in %v, %.1f MiB allocated", len(src), took, float64(alloc)/(1<<20))
			if took > time.Second*timeScale {
				t.Errorf("refusal took %v, want ≤ 1s", took)
			}
			if alloc > 100<<20 {
				t.Errorf("refusal allocated %d MiB, want ≤ 100 MiB", alloc>>20)
			}
		})
	}
}

// timeScale widens time bounds under the race detector, which slows the
// YAML parser itself about tenfold.
var timeScale = time.Duration(1 + 9*btoi(raceEnabled))

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseRefusesAliasCycle(t *testing.T) {
	const src = "version: 1\ncourses:\n  a:\n    repo: /srv/a\n    container:\n      command: &c [x, *c]\n"
	_, _, err := Parse("courses.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "courses.yaml:6:") {
		t.Fatalf("err = %v, want a refusal at line 6", err)
	}
}

// Sharing anchors the ordinary way, many times, stays well under the budget.
func TestParseAcceptsSharedAnchors(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\ncourses:\n  c0: &base\n    repo: /srv/shared\n    container:\n      env: &env {A: '1', B: '2', C: '3'}\n")
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&b, "  c%d:\n    <<: *base\n    path: p%d\n    container:\n      env: *env\n", i, i)
	}
	c, _, err := Parse("courses.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Courses["c499"]; got.Repo != "/srv/shared" || got.Container.Env["B"] != "2" {
		t.Errorf("c499 = %+v", got)
	}
}

// BenchmarkParseAliasBomb reports the memory a refused alias bomb costs
// (B/op) — the figure behind "refused in ≤ 1 s and ≤ 100 MiB".
func BenchmarkParseAliasBomb(b *testing.B) {
	src := []byte(stringBomb(8000, 9000))
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse("courses.yaml", src); err == nil {
			b.Fatal("accepted")
		}
	}
}
