package workspace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// A notebook is an nbformat 4 document: its cells apart, every other
// top-level key kept as read (numbers as written, keys sorted on output as
// Jupyter does).
type notebook struct {
	doc   map[string]any
	cells []map[string]any
}

var errNotNotebook = errors.New("not an nbformat 4 notebook")

func parseNotebook(b []byte) (*notebook, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotNotebook, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the document", errNotNotebook)
	}
	raw, ok := doc["cells"].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: no cells", errNotNotebook)
	}
	nb := &notebook{doc: doc, cells: make([]map[string]any, 0, len(raw))}
	for _, c := range raw {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: a cell is not an object", errNotNotebook)
		}
		if _, ok := m["cell_type"].(string); !ok {
			return nil, fmt.Errorf("%w: a cell has no cell_type", errNotNotebook)
		}
		nb.cells = append(nb.cells, m)
	}
	return nb, nil
}

// encode writes the notebook as Jupyter does: keys sorted, one-space
// indent, no HTML escaping, a final newline.
func (nb *notebook) encode() ([]byte, error) {
	cells := make([]any, len(nb.cells))
	for i, c := range nb.cells {
		cells[i] = c
	}
	nb.doc["cells"] = cells
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(nb.doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// volatileMeta are the cell metadata keys that running or viewing a
// notebook changes (nbstripout drops them too): no change of a cell's.
var volatileMeta = map[string]bool{"collapsed": true, "scrolled": true, "execution": true, "ExecuteTime": true, "trusted": true}

// cellKey is what a change of a cell is judged on: its type, source,
// attachments and lasting metadata — never its outputs, execution count or
// id.
func cellKey(c map[string]any) string {
	k := map[string]any{"t": c["cell_type"], "s": sourceText(c["source"])}
	if md, ok := c["metadata"].(map[string]any); ok {
		keep := map[string]any{}
		for key, v := range md {
			if !volatileMeta[key] {
				keep[key] = v
			}
		}
		if len(keep) > 0 {
			k["m"] = keep
		}
	}
	if a, ok := c["attachments"]; ok && a != nil {
		k["a"] = a
	}
	b, _ := json.Marshal(k)
	return string(b)
}

// sourceText joins a source given as a list of lines.
func sourceText(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []any:
		var b strings.Builder
		for _, l := range s {
			if ls, ok := l.(string); ok {
				b.WriteString(ls)
			}
		}
		return b.String()
	}
	return ""
}

func cellID(c map[string]any) string {
	id, _ := c["id"].(string)
	return id
}

// idsUsable reports whether every cell has an id, each once: nbformat 4.5.
func idsUsable(cells []map[string]any) bool {
	seen := make(map[string]bool, len(cells))
	for _, c := range cells {
		id := cellID(c)
		if id == "" || seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

// matchCells pairs each cell of side with the base cell it came from (-1
// for a new cell). With nbformat 4.5 ids on both sides, a cell is its id.
// Without, the longest common subsequence of unchanged cells anchors the
// two, and between anchors the remaining cells pair in order when their
// types agree (a cell edited in place).
func matchCells(base, side []map[string]any) []int {
	m := make([]int, len(side))
	for i := range m {
		m[i] = -1
	}
	if idsUsable(base) && idsUsable(side) {
		at := make(map[string]int, len(base))
		for i, c := range base {
			at[cellID(c)] = i
		}
		for j, c := range side {
			if i, ok := at[cellID(c)]; ok {
				m[j] = i
			}
		}
		return m
	}
	bk := make([]string, len(base))
	for i, c := range base {
		bk[i] = cellKey(c)
	}
	sk := make([]string, len(side))
	for j, c := range side {
		sk[j] = cellKey(c)
	}
	// LCS table, from the end.
	n, s := len(bk), len(sk)
	dp := make([][]int, n+1)
	for i := range dp {
		dp[i] = make([]int, s+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := s - 1; j >= 0; j-- {
			if bk[i] == sk[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	pairGap := func(i0, i1, j0, j1 int) {
		i := i0
		for j := j0; j < j1 && i < i1; j++ {
			for k := i; k < i1; k++ {
				if base[k]["cell_type"] == side[j]["cell_type"] {
					m[j] = k
					i = k + 1
					break
				}
			}
		}
	}
	i, j, gi, gj := 0, 0, 0, 0
	for i < n && j < s {
		switch {
		case bk[i] == sk[j]:
			pairGap(gi, i, gj, j)
			m[j] = i
			i, j = i+1, j+1
			gi, gj = i, j
		case dp[i+1][j] >= dp[i][j+1]:
			i++
		default:
			j++
		}
	}
	pairGap(gi, n, gj, s)
	return m
}

func inverse(m []int, n int) []int {
	inv := make([]int, n)
	for i := range inv {
		inv[i] = -1
	}
	for j, i := range m {
		if i >= 0 {
			inv[i] = j
		}
	}
	return inv
}

// mergeNotebooks merges the student's notebook (ours) and the course's
// (theirs) against the base they both come from, cell by cell:
//
//   - a cell changed on one side only takes that side's version (the
//     course's whole cell, or the student's with their outputs);
//   - a cell changed alike on both sides keeps the student's (and outputs);
//   - a cell changed differently on both sides keeps the student's and is
//     a conflict (its label is returned);
//   - a cell the course deleted goes, unless the student changed it;
//   - a cell the student deleted stays deleted, unless the course changed it;
//   - the student's new cells stay where they are; the course's new cells
//     go after the cell they follow in the course;
//   - the student's order wins;
//   - top-level keys and notebook metadata, key by key: the student's when
//     they changed it, else the course's.
//
// Outputs, execution counts and volatile metadata never count as changes.
// It returns ours unchanged (the same bytes) when the merge takes nothing
// from theirs, and errNotNotebook if a side is not an nbformat 4 notebook.
func mergeNotebooks(bb, ob, tb []byte) (out []byte, conflicts []string, err error) {
	base, err := parseNotebook(bb)
	if err != nil {
		return nil, nil, err
	}
	ours, err := parseNotebook(ob)
	if err != nil {
		return nil, nil, err
	}
	theirs, err := parseNotebook(tb)
	if err != nil {
		return nil, nil, err
	}
	mo := matchCells(base.cells, ours.cells)
	mt := matchCells(base.cells, theirs.cells)
	b2o := inverse(mo, len(base.cells))
	b2t := inverse(mt, len(base.cells))
	bkey := make([]string, len(base.cells))
	for i, c := range base.cells {
		bkey[i] = cellKey(c)
	}

	type item struct {
		cell map[string]any
		t    int // the course's cell it stands for, -1 for none
	}
	changed := false
	var result []item
	for j, c := range ours.cells {
		i := mo[j]
		if i < 0 {
			result = append(result, item{c, -1})
			continue
		}
		k := b2t[i]
		oKey := cellKey(c)
		oChanged := oKey != bkey[i]
		if k < 0 { // deleted by the course
			if oChanged {
				result = append(result, item{c, -1})
			} else {
				changed = true
			}
			continue
		}
		tKey := cellKey(theirs.cells[k])
		switch {
		case tKey == bkey[i] || tKey == oKey:
			result = append(result, item{c, k})
		case !oChanged:
			result = append(result, item{theirs.cells[k], k})
			changed = true
		default:
			conflicts = append(conflicts, cellLabel(c, j))
			result = append(result, item{c, k})
		}
	}
	insert := make([]bool, len(theirs.cells))
	for k, c := range theirs.cells {
		i := mt[k]
		// New in the course, or deleted by the student and changed since.
		insert[k] = i < 0 || (b2o[i] < 0 && cellKey(c) != bkey[i])
	}
	// A cell the course would add that the student has already — a new
	// cell of theirs with its id or its content (a merge made before, or
	// the same cell pasted) — is not added twice: it stands for it.
	for pass := 0; pass < 2; pass++ {
		for k, c := range theirs.cells {
			if !insert[k] {
				continue
			}
			for r := range result {
				if result[r].t != -1 {
					continue
				}
				same := pass == 0 && cellID(c) != "" && cellID(result[r].cell) == cellID(c)
				same = same || pass == 1 && cellKey(result[r].cell) == cellKey(c)
				if same {
					result[r].t = k
					insert[k] = false
					break
				}
			}
		}
	}
	for k, c := range theirs.cells {
		if !insert[k] {
			continue
		}
		at := 0
		best := -1
		for r, it := range result {
			if it.t >= 0 && it.t < k && it.t > best {
				best, at = it.t, r+1
			}
		}
		result = append(result, item{})
		copy(result[at+1:], result[at:])
		result[at] = item{c, k}
		changed = true
	}

	if mergeTop(base.doc, ours.doc, theirs.doc) {
		changed = true
	}
	if !changed {
		return ob, conflicts, nil
	}
	ours.cells = ours.cells[:0]
	for _, it := range result {
		ours.cells = append(ours.cells, it.cell)
	}
	fixIDs(ours)
	out, err = ours.encode()
	if err != nil {
		return nil, nil, err
	}
	return out, conflicts, nil
}

func cellLabel(c map[string]any, j int) string {
	if id := cellID(c); id != "" {
		return id
	}
	return fmt.Sprintf("cell %d", j+1)
}

// mergeTop merges every top-level key but cells into ours, and the keys of
// metadata one by one: the course's value where the student's is the
// base's. It reports whether ours changed.
func mergeTop(base, ours, theirs map[string]any) bool {
	changed := false
	merge := func(b, o, t map[string]any, skip string) {
		keys := map[string]bool{}
		for k := range b {
			keys[k] = true
		}
		for k := range o {
			keys[k] = true
		}
		for k := range t {
			keys[k] = true
		}
		for k := range keys {
			if k == skip {
				continue
			}
			bv, bok := b[k]
			ov, ook := o[k]
			tv, tok := t[k]
			if ook != bok || !reflect.DeepEqual(ov, bv) {
				continue // the student's
			}
			if tok == ook && reflect.DeepEqual(tv, ov) {
				continue
			}
			if tok {
				o[k] = tv
			} else {
				delete(o, k)
			}
			changed = true
		}
	}
	bm, _ := base["metadata"].(map[string]any)
	om, ook := ours["metadata"].(map[string]any)
	tm, _ := theirs["metadata"].(map[string]any)
	if ook {
		merge(bm, om, tm, "")
	}
	skip := "metadata"
	if !ook {
		skip = ""
	}
	merge(base, ours, theirs, skip)
	return changed
}

// fixIDs keeps a merged notebook valid: ids unique, and — when any cell has
// one — on every cell, with nbformat_minor at least 5. New ids are derived
// from the cell, so that merging again gives the same bytes.
func fixIDs(nb *notebook) {
	any := false
	for _, c := range nb.cells {
		if cellID(c) != "" {
			any = true
			break
		}
	}
	if !any {
		return
	}
	seen := map[string]bool{}
	for i, c := range nb.cells {
		id := cellID(c)
		if id == "" || seen[id] {
			base := id
			if base == "" {
				base = shaOf([]byte(fmt.Sprintf("%d\x00%s", i, cellKey(c))))[:8]
			}
			id = base
			for n := 2; seen[id]; n++ {
				id = fmt.Sprintf("%s-%d", base, n)
			}
			c["id"] = id
		}
		seen[id] = true
	}
	if minor, ok := nb.doc["nbformat_minor"].(json.Number); ok {
		if v, err := minor.Int64(); err == nil && v < 5 {
			nb.doc["nbformat_minor"] = json.Number("5")
		}
	}
}
