package manifest

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// maxBreakSearchLines bounds the search for the line where a file stops
// being YAML: each step parses a prefix, so the cost grows with the square
// of the distance from the break to the end of the file.
const maxBreakSearchLines = 5000

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML parser error into a problem at the line where
// the structure breaks. The parser names the line where the enclosing block
// began (an over-indented key on line 5 is "line 2: did not find expected
// key"), which sends an admin to a line that is fine.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg, libLine := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		libLine, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	line := breakLine(data)
	if line == 0 {
		line = libLine
	}
	return Problem{File: file, Line: line, Message: "YAML syntax: " + explainBreak(data, line, msg)}
}

// breakLine returns the first line past the longest prefix of whole lines
// that still parses, or 0 when the file is too long to search. The search
// runs from the end: a prefix cut inside a quoted string or a bracket fails
// too, and only the last good prefix tells where things went wrong.
func breakLine(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxBreakSearchLines {
		return 0
	}
	for n := len(lines) - 1; n > 0; n-- {
		var node yaml.Node
		if yaml.Unmarshal(bytes.Join(lines[:n], nil), &node) == nil {
			return n + 1
		}
	}
	return 1
}

// explainBreak says in an admin's words what is wrong with line n, for the
// common indentation mistakes; otherwise it gives the parser's words.
func explainBreak(data []byte, n int, parserMsg string) string {
	lines := strings.Split(string(data), "\n")
	if n < 1 || n > len(lines) {
		return parserMsg
	}
	text := lines[n-1]
	body := strings.TrimLeft(text, " \t")
	lead := text[:len(text)-len(body)]
	if strings.Contains(lead, "\t") {
		return "a tab in the indentation; YAML indents with spaces only"
	}
	// The nearest line above that holds something.
	prev := 0
	for i := n - 1; i >= 1; i-- {
		if b := strings.TrimSpace(lines[i-1]); b != "" && !strings.HasPrefix(b, "#") {
			prev = i
			break
		}
	}
	if prev == 0 {
		return parserMsg
	}
	ptext := lines[prev-1]
	pbody := strings.TrimLeft(ptext, " ")
	ind, pind := len(lead), len(ptext)-len(pbody)
	key, value, isKey := splitKey(pbody)
	switch {
	case strings.HasPrefix(body, "- ") && ind == pind && isKey && value != "":
		return fmt.Sprintf("a list item among the keys of a mapping (line %d has %s: with a value); a list goes under a key with nothing after its colon", prev, key)
	case ind > pind && isKey && value != "" && !strings.HasPrefix(value, "|") && !strings.HasPrefix(value, ">"):
		return fmt.Sprintf("over-indented: indented more than line %d, whose key %s: already has a value; keys of one mapping line up", prev, key)
	case ind < pind && !linesUpWithKeyAbove(lines[:n-1], ind):
		return fmt.Sprintf("indented by %d spaces, which lines up with no key above it", ind)
	}
	return parserMsg
}

// splitKey splits a line "key: value" (or "- key: value"); isKey is false
// for anything else.
func splitKey(body string) (key, value string, isKey bool) {
	body = strings.TrimPrefix(body, "- ")
	i := strings.Index(body, ":")
	if i <= 0 || strings.ContainsAny(body[:i], "\"'[{#") || (i+1 < len(body) && body[i+1] != ' ') {
		return "", "", false
	}
	value = strings.TrimSpace(body[i+1:])
	if j := strings.Index(value, " #"); j >= 0 {
		value = strings.TrimSpace(value[:j])
	}
	if strings.HasPrefix(value, "#") {
		value = ""
	}
	return body[:i], value, true
}

// linesUpWithKeyAbove reports whether some key of lines starts at column
// ind, the way a line closing nested blocks must line up with an outer key.
func linesUpWithKeyAbove(lines []string, ind int) bool {
	for _, l := range lines {
		b := strings.TrimLeft(l, " ")
		if _, _, ok := splitKey(b); ok && len(l)-len(b) == ind {
			return true
		}
	}
	return false
}
