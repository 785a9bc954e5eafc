package workspace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The property: whatever students do, whatever the course pushes, wherever
// an Update crashes and however often it is run again, no byte a student
// wrote is lost. The oracle below knows nothing of the merge: student text
// carries unique tokens "[S12]" (sources) and "[O7]" (outputs), and the
// oracle only searches files for them.
//
//   - every [S] token in the workspace before an Update is in the
//     workspace after it, crashed or not (never only in a backup);
//   - every [O] token is in the workspace or its backups;
//   - no file holds a conflict marker, and no temporary file is left after
//     an Update that finished;
//   - a course path the student never touched is, after an Update that
//     finished, exactly the course's (or absent if the course has none).

var errCrash = errors.New("injected crash")

var tokenRE = regexp.MustCompile(`\[[SO][0-9]+\]`)

type model struct {
	t       *testing.T
	r       *rand.Rand
	e       *env
	ids     bool              // the course's notebooks have cell ids
	course  map[string]string // the course's files
	src     Source
	touched map[string]bool // paths the student ever edited, created or deleted
	n       int             // token counter
	clock   time.Time
}

var pool = []string{"n0.ipynb", "n1.ipynb", "n2.ipynb", "sub/n3.ipynb", "t0.txt", "t1.txt", "sub/t2.txt", "d"}

func (m *model) token(kind string) string {
	m.n++
	return fmt.Sprintf("[%s%d]", kind, m.n)
}

func TestPropertyNoStudentByteLost(t *testing.T) {
	// Most of the time is fsync: 40 seeds take ~8 s; set
	// WORKSPACE_PROPERTY_SEEDS for a longer run (500 passed when written).
	seeds := 40
	if testing.Short() {
		seeds = 15
	}
	if n, err := strconv.Atoi(os.Getenv("WORKSPACE_PROPERTY_SEEDS")); err == nil {
		seeds = n
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			m := &model{t: t, r: r, e: newEnv(t), ids: seed%3 != 0, course: map[string]string{}, touched: map[string]bool{}, clock: testNow}
			m.e.ws.Now = func() time.Time { m.clock = m.clock.Add(time.Minute); return m.clock }
			for range 3 {
				m.coursePush()
			}
			m.src = m.e.push(m.course)
			if _, err := m.e.ws.Init(t.Context(), m.src, ModeCopy); err != nil {
				t.Fatal(err)
			}
			m.checkUntouched()
			for step := range 30 {
				x := r.IntN(100)
				if os.Getenv("WS_DEBUG") != "" {
					t.Logf("step %d: %d", step, x)
				}
				switch {
				case x < 45:
					m.studentEdit()
				case x < 70:
					m.coursePush()
					m.src = m.e.push(m.course)
				case x < 90:
					m.update()
				case x < 95:
					m.undo()
				default:
					m.reset()
				}
				if t.Failed() {
					t.Fatalf("failed at step %d (seed %d)", step, seed)
				}
			}
			m.src = m.e.push(m.course)
			m.update()
		})
	}
}

// scan is every token in the files under dir (temporary files aside).
func scan(t *testing.T, dir string) map[string]bool {
	out := map[string]bool{}
	if _, err := os.Stat(dir); err != nil {
		return out
	}
	for p, c := range readTree(t, dir) {
		if isTmpName(filepath.Base(p)) {
			continue
		}
		for _, tok := range tokenRE.FindAllString(c, -1) {
			out[tok] = true
		}
	}
	return out
}

func (m *model) update() {
	t := m.t
	before := scan(t, m.e.ws.Dir)
	// Crash after k file operations, then run again until it finishes.
	k := m.r.IntN(12)
	calls := 0
	m.e.ws.fault = func(op string) error {
		calls++
		if calls > k {
			return errCrash
		}
		return nil
	}
	_, err := m.e.ws.Update(t.Context(), m.src)
	m.e.ws.fault = nil
	if err != nil && !errors.Is(err, errCrash) {
		t.Fatalf("update: %v", err)
	}
	m.checkKept(before, "after a crash")
	rep, err := m.e.ws.Update(t.Context(), m.src)
	if err != nil {
		t.Fatalf("update after a crash: %v", err)
	}
	if os.Getenv("WS_DEBUG") != "" {
		t.Logf("update (crash after %d): %+v", k, rep)
	}
	m.checkKept(before, "after the re-run")
	// Converged: one more run has nothing left to do.
	if rep, err := m.e.ws.Update(t.Context(), m.src); err != nil || rep.Changed() {
		t.Fatalf("third update: %+v, %v", rep, err)
	}
	for p := range readTree(t, m.e.ws.Dir) {
		if isTmpName(filepath.Base(p)) {
			t.Errorf("temporary file %s left", p)
		}
	}
	m.checkUntouched()
}

func (m *model) checkKept(before map[string]bool, when string) {
	t := m.t
	t.Helper()
	now := scan(t, m.e.ws.Dir)
	backups := scan(t, filepath.Join(m.e.ws.State, "backups"))
	for tok := range before {
		switch {
		case now[tok]:
		case strings.HasPrefix(tok, "[O") && backups[tok]:
		default:
			t.Errorf("%s: %s lost", when, tok)
		}
	}
	assertNoMarkers(t, m.e.ws.Dir)
}

func (m *model) checkUntouched() {
	t := m.t
	ws := readTree(t, m.e.ws.Dir)
	for _, p := range pool {
		if m.touched[p] || strings.HasPrefix(p, "d") && m.touched["d"] {
			continue
		}
		want, inCourse := m.course[p]
		got, inWS := ws[p]
		if inCourse != inWS || got != want {
			t.Errorf("untouched %s: workspace %v %.40q, course %v %.40q", p, inWS, got, inCourse, want)
		}
	}
}

// coursePush changes the course model: files added, changed, deleted;
// notebook cells changed, added, deleted.
func (m *model) coursePush() {
	p := pool[m.r.IntN(len(pool))]
	if p == "d" {
		p = "d/x.txt" // a folder where a student may have a file
	}
	old, ok := m.course[p]
	switch {
	case !ok:
		if strings.HasSuffix(p, ".ipynb") {
			m.course[p] = m.notebook(nil, "C")
		} else {
			m.course[p] = m.token("C") + "\n"
		}
	case m.r.IntN(5) == 0:
		delete(m.course, p)
	case strings.HasSuffix(p, ".ipynb"):
		m.course[p] = m.notebook([]byte(old), "C")
	default:
		m.course[p] = old + m.token("C") + "\n"
	}
}

// notebook edits a notebook (nil: makes one) as a person would: one cell
// changed, added, deleted, or (students) run.
func (m *model) notebook(data []byte, who string) string {
	var n *notebook
	if data != nil {
		var err error
		if n, err = parseNotebook(data); err != nil {
			n = nil
		}
	}
	if n == nil {
		n, _ = parseNotebook([]byte(nb(cell{id: m.cellID(who), src: m.token(who)}, cell{id: m.cellID(who), src: m.token(who)})))
	}
	newCell := func() map[string]any {
		c := map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": m.token(who), "outputs": []any{}, "execution_count": nil}
		if id := m.cellID(who); id != "" {
			c["id"] = id
		}
		return c
	}
	switch x := m.r.IntN(10); {
	case x < 4 && len(n.cells) > 0:
		c := n.cells[m.r.IntN(len(n.cells))]
		c["source"] = m.token(who)
	case x < 6 || len(n.cells) == 0:
		at := m.r.IntN(len(n.cells) + 1)
		n.cells = slices.Insert(n.cells, at, newCell())
	case x < 8 && who == "S":
		c := n.cells[m.r.IntN(len(n.cells))]
		c["outputs"] = []any{map[string]any{"output_type": "stream", "name": "stdout", "text": m.token("O")}}
	default:
		at := m.r.IntN(len(n.cells))
		n.cells = slices.Delete(n.cells, at, at+1)
	}
	out, err := n.encode()
	if err != nil {
		m.t.Fatal(err)
	}
	return string(out)
}

func (m *model) cellID(who string) string {
	if !m.ids {
		return ""
	}
	m.n++
	return fmt.Sprintf("%s%d", strings.ToLower(who), m.n)
}

// studentEdit is one thing a student does in their folder.
func (m *model) studentEdit() {
	t := m.t
	dir := m.e.ws.Dir
	files := readTree(t, dir)
	names := keys(files)
	switch x := m.r.IntN(10); {
	case x < 5 && len(names) > 0: // edit a file
		p := names[m.r.IntN(len(names))]
		m.touched[p] = true
		var c string
		if strings.HasSuffix(p, ".ipynb") {
			c = m.notebook([]byte(files[p]), "S")
		} else {
			c = files[p] + m.token("S") + "\n"
		}
		edit(t, dir, map[string]string{p: c})
	case x < 7 && len(names) > 0: // delete a file
		p := names[m.r.IntN(len(names))]
		m.touched[p] = true
		edit(t, dir, map[string]string{p: del})
	default: // create a file where there is none
		p := pool[m.r.IntN(len(pool))]
		if _, ok := files[p]; ok {
			return
		}
		if fi, err := os.Lstat(filepath.Join(dir, p)); err == nil && fi.IsDir() {
			return
		}
		if fi, err := os.Lstat(filepath.Join(dir, filepath.Dir(p))); err == nil && !fi.IsDir() {
			return
		}
		m.touched[p] = true
		c := m.token("S") + "\n"
		if strings.HasSuffix(p, ".ipynb") {
			c = m.notebook(nil, "S")
		}
		edit(t, dir, map[string]string{p: c})
	}
}

func (m *model) undo() {
	t := m.t
	before := scan(t, m.e.ws.Dir)
	rep, err := m.e.ws.Undo(t.Context(), "")
	if os.Getenv("WS_DEBUG") != "" {
		t.Logf("undo: %+v %v", rep, err)
	}
	if err != nil && !errors.Is(err, ErrNoBackup) {
		t.Fatalf("undo: %v", err)
	}
	// Undo may take back a merge: the student's tokens are in the
	// workspace or in a backup (Undo backs up what it replaces).
	now := scan(t, m.e.ws.Dir)
	backups := scan(t, filepath.Join(m.e.ws.State, "backups"))
	for tok := range before {
		if !now[tok] && !backups[tok] {
			t.Errorf("undo: %s lost", tok)
		}
	}
	// Whatever Undo took back was a merge's: the next Update redoes it.
	// Paths untouched by the student are checked after that Update.
}

func (m *model) reset() {
	t := m.t
	var ps []string
	for p := range m.course {
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return
	}
	slices.Sort(ps)
	p := ps[m.r.IntN(len(ps))]
	before := scan(t, m.e.ws.Dir)
	rep, err := m.e.ws.Reset(t.Context(), m.src, p)
	if os.Getenv("WS_DEBUG") != "" {
		t.Logf("reset %s: %+v %v", p, rep, err)
	}
	if err != nil && !errors.Is(err, ErrInTheWay) {
		t.Fatalf("reset %s: %v", p, err)
	}
	m.checkKept(before, "after a reset")
}
