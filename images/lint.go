package images

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/nbhosting/nbh-sync/manifest"
)

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	line int    // line where it starts (1-based)
	cmd  string // upper case
	args string
}

var directiveRE = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)

// parseDockerfile splits a Dockerfile into instructions the way the engine
// does: parser directives (only before anything else), comment lines
// (dropped even inside a continuation), and lines continued by the escape
// character (\ or the one set by an escape= directive).
func parseDockerfile(src []byte) []instruction {
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
	var out []instruction
	var cur *instruction
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
			cur = &instruction{line: i + 1}
			text = strings.TrimLeft(text, " \t")
			word, rest, _ := strings.Cut(text, " ")
			if j := strings.IndexAny(word, "\t"); j >= 0 {
				word, rest = word[:j], word[j+1:]+" "+rest
			}
			cur.cmd = strings.ToUpper(word)
			cur.args = rest
		} else {
			cur.args += " " + text
		}
		if !cont {
			cur.args = strings.TrimSpace(cur.args)
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		cur.args = strings.TrimSpace(cur.args)
		out = append(out, *cur)
	}
	return out
}

// Lint checks a Dockerfile: its final stage must copy
// start-in-dir-as-uid.sh into /usr/local/bin and end as root (errors); a
// base image by a moving tag (:latest or none, and no digest) is a warning.
// file names the Dockerfile in the problems, which carry its line numbers.
func Lint(file string, dockerfile []byte) []manifest.Problem {
	var probs []manifest.Problem
	add := func(line int, warn bool, format string, a ...any) {
		probs = append(probs, manifest.Problem{File: file, Line: line, Message: fmt.Sprintf(format, a...), Warning: warn})
	}
	ins := parseDockerfile(dockerfile)
	stages := map[string]bool{}
	final := -1 // index of the final FROM
	for i, in := range ins {
		if in.cmd != "FROM" {
			continue
		}
		final = i
		words := flagless(strings.Fields(in.args))
		if len(words) == 0 {
			add(in.line, false, "FROM without an image")
			continue
		}
		ref := words[0]
		// A FROM naming an earlier stage is not a base image.
		if !stages[strings.ToLower(ref)] && moving(ref) {
			add(in.line, true, "FROM %s: a moving tag; pin the base image by digest (image@sha256:...) so rebuilds are reproducible", ref)
		}
		if len(words) >= 3 && strings.EqualFold(words[1], "as") {
			stages[strings.ToLower(words[2])] = true
		}
	}
	if final < 0 {
		add(0, false, "no FROM instruction")
		return probs
	}

	copied := false
	userLine, user := 0, ""
	for _, in := range ins[final+1:] {
		switch in.cmd {
		case "USER":
			userLine, user = in.line, in.args
		case "COPY", "ADD":
			if copiesStartScript(in.args) {
				copied = true
			}
		}
	}
	if !copied {
		add(ins[final].line, false, "the final stage must COPY %s into /usr/local/bin (e.g. COPY %s /usr/local/bin/)", manifest.StartScript, manifest.StartScript)
	}
	if user != "" {
		u, _, _ := strings.Cut(strings.Fields(user)[0], ":")
		switch {
		case u == "root" || u == "0":
		case strings.Contains(u, "$"):
			add(userLine, true, "USER %s: cannot tell whether the image ends as root; it must (the start script switches to the student's uid)", user)
		default:
			add(userLine, false, "USER %s: the image must end as root (the start script switches to the student's uid); add USER root at the end", user)
		}
	}
	return probs
}

// flagless drops leading --flags (FROM --platform=..., COPY --chown=...).
func flagless(words []string) []string {
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		words = words[1:]
	}
	return words
}

// moving reports whether an image reference follows a moving tag: no
// digest, and either no tag or :latest. scratch and references built from
// build args are not judged.
func moving(ref string) bool {
	if strings.EqualFold(ref, "scratch") || strings.Contains(ref, "$") || strings.Contains(ref, "@sha256:") {
		return false
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, ok := strings.Cut(last, ":")
	return !ok || tag == "latest"
}

// copiesStartScript reports whether COPY/ADD arguments (shell or JSON form)
// put the start script into /usr/local/bin.
func copiesStartScript(args string) bool {
	var words []string
	if strings.HasPrefix(strings.TrimSpace(args), "[") {
		if err := json.Unmarshal([]byte(args), &words); err != nil {
			return false
		}
	} else {
		words = strings.Fields(args)
	}
	words = flagless(words)
	if len(words) < 2 {
		return false
	}
	dst := path.Clean(words[len(words)-1])
	srcs := words[:len(words)-1]
	if dst != "/usr/local/bin" && dst != StartScriptPath {
		return false
	}
	for _, s := range srcs {
		base := path.Base(s)
		if base == manifest.StartScript || path.Clean(s) == "." {
			return true
		}
	}
	return false
}
