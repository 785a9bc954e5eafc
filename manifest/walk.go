package manifest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// position is where a field path was written.
type position struct{ line, col int }

// walker checks a yaml.Node tree against the Go type it will be decoded
// into, so that unknown keys, duplicate keys and wrong types are reported
// with their line and column — sigs.k8s.io/yaml reports none of that. It
// also records where each field path was written, for later checks.
//
// A bad value is blanked (made null) and a bad key dropped once reported,
// so that what remains can still be decoded and checked: every problem of
// the file is reported at once.
type walker struct {
	file  string
	probs []Problem
	pos   map[string]position
	drop  map[*yaml.Node]bool // keys whose pair is to be removed
	bad   map[string]bool     // paths already reported
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func (w *walker) errorf(n *yaml.Node, path, format string, args ...any) {
	w.bad[path] = true
	w.probs = append(w.probs, Problem{File: w.file, Line: n.Line, Col: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// valueErrorf reports a bad value at the place its key was written, as
// the validate example of docs/cli.md shows (the key is what the reader looks for).
// The value is then blanked.
func (w *walker) valueErrorf(n *yaml.Node, path, format string, args ...any) {
	at := n
	if p, ok := w.pos[path]; ok {
		at = &yaml.Node{Line: p.line, Column: p.col}
	}
	w.errorf(at, path, format, args...)
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// keyErrorf reports a bad key; its pair is then dropped.
func (w *walker) keyErrorf(key *yaml.Node, path, format string, args ...any) {
	w.errorf(key, path, format, args...)
	w.drop[key] = true
}

// prune removes the dropped pairs from the tree and expands merge keys in
// place: the strict decoder refuses a merged key that the mapping sets too,
// which YAML allows.
func (w *walker) prune(n *yaml.Node) {
	for _, c := range n.Content {
		w.prune(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	var kept, merges []*yaml.Node
	own := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		switch {
		case w.drop[key]:
		case key.Tag == "!!merge":
			merges = append(merges, val)
		default:
			own[key.Value] = true
			kept = append(kept, key, val)
		}
	}
	var expand func(m *yaml.Node)
	expand = func(m *yaml.Node) {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		if m.Kind == yaml.SequenceNode {
			for _, item := range m.Content {
				expand(item)
			}
			return
		}
		w.prune(m) // an anchored mapping may not have been visited yet
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i]; !own[k.Value] {
				own[k.Value] = true
				kept = append(kept, k, unanchored(m.Content[i+1]))
			}
		}
	}
	for _, m := range merges {
		expand(m)
	}
	n.Content = kept
}

// unanchored copies n without anchors, so that a merged copy does not
// define an anchor twice.
func unanchored(n *yaml.Node) *yaml.Node {
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, x := range n.Content {
		c.Content[i] = unanchored(x)
	}
	return &c
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the field unset
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		w.custom(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		w.mapping(n, path, func(key *yaml.Node) (reflect.Type, string, bool) {
			f, ok := fieldByTag(t, key.Value)
			if !ok {
				msg := fmt.Sprintf("unknown field %q", key.Value)
				if s := suggest(key.Value, tagsOf(t)); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				w.keyErrorf(key, join(path, key.Value), "%s", msg)
				return nil, "", false
			}
			return f.Type, join(path, key.Value), true
		})
	case reflect.Map:
		w.mapping(n, path, func(key *yaml.Node) (reflect.Type, string, bool) {
			return t.Elem(), join(path, key.Value), true
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.valueErrorf(n, path, "want a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.pos[p] = position{item.Line, item.Column}
			w.walk(item, t.Elem(), p)
		}
	default:
		w.scalar(n, t, path)
	}
}

// mapping walks the pairs of a mapping node; field resolves a key to the
// type and path of its value, or reports it and returns false.
func (w *walker) mapping(n *yaml.Node, path string, field func(key *yaml.Node) (reflect.Type, string, bool)) {
	if n.Kind != yaml.MappingNode {
		w.valueErrorf(n, path, "want a mapping (key: value), got %s", describe(n))
		return
	}
	seen := map[string]*yaml.Node{}
	w.pairs(n, path, seen, field, false)
}

// pairs walks the mapping's own keys first and its merge keys (<<) last, so
// that, as in the YAML spec, a key written in the mapping beats a merged one
// wherever the << stands.
func (w *walker) pairs(n *yaml.Node, path string, seen map[string]*yaml.Node, field func(*yaml.Node) (reflect.Type, string, bool), merged bool) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.ScalarNode && key.Tag == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if key.Kind != yaml.ScalarNode {
			w.keyErrorf(key, path, "a key must be a plain string, got %s", describe(key))
			continue
		}
		if prev, dup := seen[key.Value]; dup {
			if !merged {
				w.keyErrorf(key, join(path, key.Value), "duplicate key %q (first at line %d)", key.Value, prev.Line)
			}
			continue
		}
		seen[key.Value] = key
		t, p, ok := field(key)
		if !ok {
			continue
		}
		w.pos[p] = position{key.Line, key.Column}
		w.walk(val, t, p)
	}
	for _, val := range merges {
		w.merge(val, path, seen, field)
	}
}

// merge handles YAML merge keys (<<: *anchor): keys written in the mapping
// itself win, as in the YAML spec.
func (w *walker) merge(val *yaml.Node, path string, seen map[string]*yaml.Node, field func(*yaml.Node) (reflect.Type, string, bool)) {
	if val.Kind == yaml.AliasNode {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		w.pairs(val, path, seen, field, true)
	case yaml.SequenceNode:
		for _, m := range val.Content {
			w.merge(m, path, seen, field)
		}
	default:
		w.valueErrorf(val, path, "a merge key (<<) needs a mapping, got %s", describe(val))
	}
}

func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.valueErrorf(n, path, "want %s, got %s", kindName(t), describe(n))
		return
	}
	switch t.Kind() {
	case reflect.String:
		// A number where a string is wanted is taken as written only when
		// YAML's reading of it prints back the same: 3.10 reads as 3.1,
		// 0123 as 123 (a build key prefix, a version).
		if n.Tag == "!!float" || n.Tag == "!!int" {
			var canon string
			if f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64); err == nil {
				canon = strconv.FormatFloat(f, 'f', -1, 64)
			}
			if canon != n.Value {
				w.valueErrorf(n, path, "%s is read as a number (%s); quote it (\"%s\") to keep it as written", n.Value, orText(canon, "not a plain number"), n.Value)
			}
		}
	case reflect.Bool:
		if n.Tag != "!!bool" {
			w.valueErrorf(n, path, "want true or false, got %q", n.Value)
		}
	case reflect.Int, reflect.Int64:
		if n.Tag != "!!int" {
			w.valueErrorf(n, path, "want a whole number, got %q", n.Value)
		}
	case reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			w.valueErrorf(n, path, "want a number, got %q", n.Value)
		}
	}
}

// custom checks a scalar for a type with its own JSON decoding (Duration,
// ByteSize) by running that decoding on it.
func (w *walker) custom(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.valueErrorf(n, path, "want %s, got %s", kindName(t), describe(n))
		return
	}
	raw, _ := json.Marshal(n.Value)
	if n.Tag == "!!int" || n.Tag == "!!float" {
		raw = []byte(n.Value)
	}
	v := reflect.New(t).Interface().(json.Unmarshaler)
	if err := v.UnmarshalJSON(raw); err != nil {
		w.valueErrorf(n, path, "%v", err)
	}
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tagName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func tagsOf(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if n := tagName(t.Field(i)); n != "" {
			names = append(names, n)
		}
	}
	return names
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func kindName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Duration]():
		return "a duration"
	case reflect.TypeFor[ByteSize]():
		return "a memory size"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// suggest returns the candidate closest to s, if it is a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := distance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
