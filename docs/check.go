package docs

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// A Page is one markdown file: its path (slash-separated, from the
// repository's root) and its text.
type Page struct {
	Path string
	Text string
}

var (
	fenceRe   = regexp.MustCompile("^\\s*(```|~~~)")
	headingRe = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	linkRe    = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	spanRe    = regexp.MustCompile("`+[^`]*`+")
	htmlIDRe  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	mdLinkRe  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// split returns the prose lines of a page (fenced code replaced by empty
// lines) and its code: the lines of its fenced blocks and its inline code
// spans, for the command checks.
func split(text string) (prose []string, code []string) {
	in := false
	for _, l := range strings.Split(text, "\n") {
		if fenceRe.MatchString(l) {
			in = !in
			prose = append(prose, "")
			continue
		}
		if in {
			code = append(code, l)
			prose = append(prose, "")
			continue
		}
		prose = append(prose, l)
		for _, s := range spanRe.FindAllString(l, -1) {
			code = append(code, strings.Trim(s, "`"))
		}
	}
	return prose, code
}

// Slug is GitHub's anchor for a heading: markdown dropped, lowercase,
// punctuation dropped, each space a hyphen.
func Slug(heading string) string {
	h := mdLinkRe.ReplaceAllString(heading, "$1")
	h = strings.ToLower(h)
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Anchors lists the anchors a page defines: its headings' slugs (a repeated
// one gets -1, -2, … as on GitHub) and explicit <a id> or <a name>.
func Anchors(text string) map[string]bool {
	prose, _ := split(text)
	seen := map[string]int{}
	out := map[string]bool{}
	for _, l := range prose {
		for _, m := range htmlIDRe.FindAllStringSubmatch(l, -1) {
			out[m[1]] = true
		}
		m := headingRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := Slug(m[2])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// CheckLinks returns one problem per broken link of the page: a relative
// target that does not exist in fsys, or an #anchor that no heading of
// the target markdown file defines. Links in code are not links.
func CheckLinks(fsys fs.FS, p Page) []string {
	var probs []string
	prose, _ := split(p.Text)
	for i, l := range prose {
		l = spanRe.ReplaceAllString(l, "x")
		for _, m := range linkRe.FindAllStringSubmatch(l, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			where := fmt.Sprintf("%s:%d: link %q", p.Path, i+1, target)
			name := p.Path
			if file != "" {
				if strings.HasPrefix(file, "/") {
					name = path.Clean(strings.TrimPrefix(file, "/"))
				} else {
					name = path.Join(path.Dir(p.Path), file)
				}
				if strings.HasPrefix(name, "../") || name == ".." {
					probs = append(probs, where+": outside the repository")
					continue
				}
				if _, err := fs.Stat(fsys, name); err != nil {
					probs = append(probs, where+": no such file")
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(name, ".md") {
				continue
			}
			text := p.Text
			if name != p.Path {
				b, err := fs.ReadFile(fsys, name)
				if err != nil {
					probs = append(probs, where+": "+err.Error())
					continue
				}
				text = string(b)
			}
			if !Anchors(text)[anchor] {
				probs = append(probs, where+": no heading #"+anchor+" in "+name)
			}
		}
	}
	return probs
}

// The place a command is run from: a line's start, after a shell operator
// or `=` (ExecStart=…), optionally sudo, optionally a path ending in bin/
// or ./ (bin/nbh-sync, /usr/local/bin/nbh-sync).
const cmdStart = `(?:^|[\s;|&(=]|\$\()(?:sudo\s+)?`

var (
	nbhRe  = regexp.MustCompile(cmdStart + `(?:\S*bin/|\./)?nbh-sync[ \t]+(.*)$`)
	makeRe = regexp.MustCompile(cmdStart + `make[ \t]+(.*)$`)
	wordRe = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
)

// CLI is what the command checks know of nbh-sync: its commands and which
// of its flags take a value.
type CLI struct {
	Commands   map[string]bool
	ValueFlags map[string]bool
}

// CheckCommands returns one problem per `nbh-sync WORD` in the page's code
// whose WORD (the first word after the global flags) is not a command,
// and per `make TARGET` whose target the Makefile does not have.
// Placeholders (COMMAND, [--flag]) and lines with no command are left alone.
func CheckCommands(p Page, cli CLI, targets map[string]bool) []string {
	var probs []string
	_, code := split(p.Text)
	for _, l := range code {
		if m := nbhRe.FindStringSubmatch(l); m != nil {
			if w := firstWord(m[1], cli.ValueFlags); w != "" {
				for _, c := range strings.Split(w, "|") {
					if wordRe.MatchString(c) && !cli.Commands[c] {
						probs = append(probs, fmt.Sprintf("%s: %q: no command %q", p.Path, strings.TrimSpace(l), c))
					}
				}
			}
		}
		if m := makeRe.FindStringSubmatch(l); m != nil {
			for _, f := range strings.Fields(m[1]) {
				if strings.Contains(f, "=") || strings.HasPrefix(f, "-") {
					continue
				}
				if wordRe.MatchString(f) && !targets[f] {
					probs = append(probs, fmt.Sprintf("%s: %q: no make target %q", p.Path, strings.TrimSpace(l), f))
				}
				break
			}
		}
	}
	return probs
}

// firstWord is the first argument after the flags, or "" when the
// command line has none or starts with a placeholder.
func firstWord(args string, valueFlags map[string]bool) string {
	fields := strings.Fields(args)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.HasPrefix(f, "-") {
			if !strings.Contains(f, "=") && valueFlags[f] {
				i++
			}
			continue
		}
		f = strings.TrimRight(f, "`;)")
		if f == "" || strings.ContainsAny(f[:1], "[<{$#") || strings.ToUpper(f) == f {
			return ""
		}
		return f
	}
	return ""
}

// ParseHelp reads the commands and the value-taking flags from the output
// of `nbh-sync --help` (cobra's layout).
func ParseHelp(help string) CLI {
	cli := CLI{Commands: map[string]bool{"help": true}, ValueFlags: map[string]bool{}}
	section := ""
	flagRe := regexp.MustCompile(`^\s+(?:(-\w), )?(--[\w-]+)(?: (\w+))?\s`)
	for _, l := range strings.Split(help, "\n") {
		if !strings.HasPrefix(l, " ") && strings.HasSuffix(strings.TrimSpace(l), ":") {
			section = strings.TrimSpace(l)
			continue
		}
		switch {
		case strings.HasSuffix(section, "Commands:"):
			if f := strings.Fields(l); len(f) > 0 {
				cli.Commands[f[0]] = true
			}
		case strings.HasSuffix(section, "Flags:"):
			if m := flagRe.FindStringSubmatch(l + " "); m != nil && m[3] != "" {
				cli.ValueFlags[m[2]] = true
				if m[1] != "" {
					cli.ValueFlags[m[1]] = true
				}
			}
		}
	}
	return cli
}

// MakeTargets lists the targets a Makefile defines.
func MakeTargets(makefile string) map[string]bool {
	out := map[string]bool{}
	re := regexp.MustCompile(`^([a-zA-Z0-9][\w.-]*(?:\s+[a-zA-Z0-9][\w.-]*)*)\s*:([^=]|$)`)
	for _, l := range strings.Split(makefile, "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			for _, t := range strings.Fields(m[1]) {
				out[t] = true
			}
		}
	}
	return out
}
