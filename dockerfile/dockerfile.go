// Package dockerfile reads the few things nbh-sync needs from a Dockerfile:
// its instructions (with continuations joined, the way the engine splits
// them) and the images its stages are built FROM. It is pure, so that the
// config checks (package manifest) and the builder (package images) read
// Dockerfiles the same way.
package dockerfile

import (
	"regexp"
	"strings"

	"github.com/nbhosting/nbh-sync/imageref"
)

// Instruction is one Dockerfile instruction with continuations joined.
type Instruction struct {
	// Line is the line where it starts (1-based).
	Line int
	// Cmd is the instruction word, upper case.
	Cmd  string
	Args string
}

var directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)

// Parse splits a Dockerfile into instructions the way the engine does:
// parser directives (only before anything else), comment lines (dropped
// even inside a continuation), and lines continued by the escape character
// (\ or the one set by an escape= directive).
func Parse(src []byte) []Instruction {
	lines := strings.Split(strings.ReplaceAll(string(src), "\r\n", "\n"), "\n")
	escape := byte('\\')
	i := 0
	for ; i < len(lines); i++ {
		m := directiveRE.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		if strings.EqualFold(m[1], "escape") && len(m[2]) == 1 {
			escape = m[2][0]
		}
	}
	var out []Instruction
	var cur *Instruction
	for ; i < len(lines); i++ {
		trimmed := strings.TrimSpace(lines[i])
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == nil) {
			continue
		}
		text := strings.TrimRight(lines[i], " \t")
		cont := len(text) > 0 && text[len(text)-1] == escape
		if cont {
			text = text[:len(text)-1]
		}
		if cur == nil {
			cur = &Instruction{Line: i + 1}
			text = strings.TrimLeft(text, " \t")
			word, rest, _ := strings.Cut(text, " ")
			if j := strings.IndexAny(word, "\t"); j >= 0 {
				word, rest = word[:j], word[j+1:]+" "+rest
			}
			cur.Cmd = strings.ToUpper(word)
			cur.Args = rest
		} else {
			cur.Args += " " + text
		}
		if !cont {
			cur.Args = strings.TrimSpace(cur.Args)
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.Args = strings.TrimSpace(cur.Args)
		out = append(out, *cur)
	}
	return out
}

// From is one FROM instruction that names an image (not an earlier stage).
type From struct {
	// Ref is the image reference as written.
	Ref  string
	Line int
	// Final is true for the FROM of the last stage: the image the build
	// produces is made on it.
	Final bool
}

// Froms returns the FROM instructions of src that name images, in order;
// a FROM naming an earlier stage (FROM build AS ...) is left out, and so
// is one without an image.
func Froms(src []byte) []From {
	var out []From
	stages := map[string]bool{}
	last := -1
	for _, in := range Parse(src) {
		if in.Cmd != "FROM" {
			continue
		}
		words := Flagless(strings.Fields(in.Args))
		if len(words) == 0 {
			last = -1
			continue
		}
		ref := words[0]
		isStage := stages[strings.ToLower(ref)]
		if len(words) >= 3 && strings.EqualFold(words[1], "as") {
			stages[strings.ToLower(words[2])] = true
		}
		if isStage {
			last = -1
			continue
		}
		out = append(out, From{Ref: ref, Line: in.Line})
		last = len(out) - 1
	}
	if last >= 0 {
		out[last].Final = true
	}
	return out
}

// Flagless drops leading --flags (FROM --platform=..., COPY --chown=...).
func Flagless(words []string) []string {
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	return words
}

// LocalName returns the image name a reference means when it names an
// image of this engine by its name: "name" and "name:latest" give "name",
// as do the forms podman lists ("localhost/name", "docker.io/library/name";
// see imageref.Familiar). A reference with another tag, a digest or a build
// argument gives "" — it cannot name an image the site builds (those are
// served as name:latest).
func LocalName(ref string) string {
	if strings.Contains(ref, "$") || strings.Contains(ref, "@") {
		return ""
	}
	ref = imageref.Familiar(ref)
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.Index(last, ":"); i >= 0 {
		if last[i+1:] != "latest" {
			return ""
		}
		ref = ref[:len(ref)-len(last)+i]
	}
	return ref
}

// RewriteFroms returns src with the image reference of each FROM that names
// an image replaced by to(ref) where ok; every other byte is kept, so line
// numbers in the engine's messages still match the file. It is how a build
// names its site's base images by their site-scoped repositories while the
// Dockerfile says FROM python.
func RewriteFroms(src []byte, to func(ref string) (string, bool)) []byte {
	froms := Froms(src)
	if len(froms) == 0 {
		return src
	}
	lines := strings.SplitAfter(string(src), "\n")
	changed := false
	for _, f := range froms {
		repl, ok := to(f.Ref)
		if !ok || repl == f.Ref {
			continue
		}
		if replaceRef(lines[f.Line-1:], f.Ref, repl) {
			changed = true
		}
	}
	if !changed {
		return src
	}
	return []byte(strings.Join(lines, ""))
}

// replaceRef replaces the first word of the FROM instruction starting at
// lines[0] that is neither FROM itself, a --flag nor a line continuation,
// when it is ref; the instruction may go on over the next lines.
func replaceRef(lines []string, ref, repl string) bool {
	first := true
	for i, line := range lines {
		pos := 0
		for pos < len(line) {
			start := pos + strings.IndexFunc(line[pos:], func(r rune) bool { return !isSpace(r) })
			if start < pos {
				break // only spaces left on this line
			}
			end := start + strings.IndexFunc(line[start:], isSpace)
			if end < start {
				end = len(line)
			}
			word := line[start:end]
			pos = end
			switch {
			case first:
				first = false // the FROM keyword
			case strings.HasPrefix(word, "--"), word == "\\", word == "`":
			case word == ref:
				lines[i] = line[:start] + repl + line[end:]
				return true
			default:
				return false
			}
		}
	}
	return false
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
