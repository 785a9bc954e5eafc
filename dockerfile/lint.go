package dockerfile

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
)

// StartScript is the start script every image must carry in
// /usr/local/bin: nbhosting's start-in-dir-as-uid.sh DIR UID COMMAND...
const StartScript = "start-in-dir-as-uid.sh"

// StartScriptPath is where every image must carry it.
const StartScriptPath = "/usr/local/bin/" + StartScript

// Finding is one problem Lint finds, at a line of the Dockerfile (0 when
// it is about the whole file).
type Finding struct {
	Line    int
	Warning bool
	Message string
}

// Base says what a build knows of the image its final stage is built FROM.
type Base int

// What the start-script rule can know of a base image.
const (
	// BaseUnknown is an image from elsewhere: nothing here can say
	// whether it carries the start script; the smoke test will.
	BaseUnknown Base = iota
	// BaseProvides is an image that carries the start script: one this
	// site builds whose Dockerfile installs it (or inherits it), or one of
	// nbhosting's core images (nbhosting/*), which all install it.
	BaseProvides
	// BaseLacks is an image known not to carry it (scratch, or a site
	// image whose Dockerfile neither installs nor inherits it).
	BaseLacks
)

// CoreNamespace is the namespace of nbhosting's core images, which carry
// the start script by construction; course Dockerfiles build FROM them.
const CoreNamespace = "nbhosting/"

// Bases tells Lint what is known of the image a FROM reference names:
// whether it carries the start script, and whether the site builds it
// (then a moving tag is no concern: the build key follows that image).
type Bases func(ref string) (script Base, site bool)

// BaseOf is what is known of a FROM reference with no help from the site:
// nbhosting's core images provide the start script, scratch lacks it,
// anything else is unknown.
func BaseOf(ref string) (script Base, site bool) {
	switch name := LocalName(ref); {
	case strings.EqualFold(ref, "scratch"):
		return BaseLacks, false
	case strings.HasPrefix(name, CoreNamespace):
		return BaseProvides, false
	}
	return BaseUnknown, false
}

// Lint checks a Dockerfile: its final stage must end as root, and must
// carry start-in-dir-as-uid.sh in /usr/local/bin — copied there, or
// inherited from its base. base says what is known of the final stage's
// base; nil means BaseOf. Where only the built image can tell (a base from
// elsewhere), it warns and leaves it to the smoke test. A base image by a
// moving tag (:latest or none, and no digest) is a warning, unless the site
// builds it (then its build key follows it).
func Lint(src []byte, base Bases) []Finding {
	if base == nil {
		base = BaseOf
	}
	var probs []Finding
	add := func(line int, warn bool, format string, a ...any) {
		probs = append(probs, Finding{Line: line, Message: fmt.Sprintf(format, a...), Warning: warn})
	}
	ins := Parse(src)
	stages := map[string]bool{}
	final := -1 // index of the final FROM
	for i, in := range ins {
		if in.Cmd != "FROM" {
			continue
		}
		final = i
		words := Flagless(strings.Fields(in.Args))
		if len(words) == 0 {
			add(in.Line, false, "FROM without an image")
			continue
		}
		ref := words[0]
		// A FROM naming an earlier stage is not a base image, and one the
		// site builds is followed by the build key.
		if _, site := base(ref); !stages[strings.ToLower(ref)] && moving(ref) && !site {
			add(in.Line, true, "FROM %s: a moving tag; pin the base image by digest (image@sha256:...) so rebuilds are reproducible", ref)
		}
		if len(words) >= 3 && strings.EqualFold(words[1], "as") {
			stages[strings.ToLower(words[2])] = true
		}
	}
	if final < 0 {
		add(0, false, "no FROM instruction")
		return probs
	}
	for _, in := range ins {
		cmd, args := in.Cmd, in.Args
		if cmd == "ONBUILD" {
			word, rest, _ := strings.Cut(strings.TrimSpace(args), " ")
			cmd, args = strings.ToUpper(word), rest
		}
		if cmd != "ADD" {
			continue
		}
		if src := remoteSource(args); src != "" {
			add(in.Line, false, "ADD %s: the engine fetches a remote source itself, from the host's network namespace, where the host's loopback services (the daemon's API among them) answer; fetch it in a RUN step instead (RUN curl -fsSLo ... %s), which runs in the build's own container", src, src)
		}
	}

	userLine, user := 0, ""
	for _, in := range ins[final+1:] {
		if in.Cmd == "USER" {
			userLine, user = in.Line, in.Args
		}
	}
	if !InstallsStartScript(src) {
		ref, known := FinalRef(src), BaseUnknown
		if ref != "" {
			known, _ = base(ref)
		}
		switch known {
		case BaseProvides:
		case BaseUnknown:
			add(ins[final].Line, true, "FROM %s: cannot check that the base provides %s in /usr/local/bin; the smoke test will (or COPY %s /usr/local/bin/)", ins[final].Args, StartScript, StartScript)
		default:
			add(ins[final].Line, false, "the final stage must COPY %s into /usr/local/bin (e.g. COPY %s /usr/local/bin/), or build FROM an image that does", StartScript, StartScript)
		}
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

// remoteSource returns the first source of an ADD that the engine would
// fetch over the network (a URL or a git remote), or "".
func remoteSource(args string) string {
	words := Flagless(strings.Fields(args))
	if len(words) > 0 && strings.HasPrefix(words[0], "[") {
		var list []string
		if json.Unmarshal([]byte(strings.Join(words, " ")), &list) == nil {
			words = list
		}
	}
	if len(words) < 2 {
		return ""
	}
	for _, w := range words[:len(words)-1] {
		if strings.Contains(w, "://") || strings.HasPrefix(w, "git@") {
			return w
		}
	}
	return ""
}

// InstallsStartScript reports whether the final stage of a Dockerfile
// copies the start script into /usr/local/bin itself.
func InstallsStartScript(src []byte) bool {
	ins := Parse(src)
	final := -1
	for i, in := range ins {
		if in.Cmd == "FROM" {
			final = i
		}
	}
	if final < 0 {
		return false
	}
	for _, in := range ins[final+1:] {
		if (in.Cmd == "COPY" || in.Cmd == "ADD") && copiesStartScript(in.Args) {
			return true
		}
	}
	return false
}

// FinalRef is the reference of the final FROM ("" when that FROM names an
// earlier stage: the stage's own base was judged with it).
func FinalRef(src []byte) string {
	for _, f := range Froms(src) {
		if f.Final {
			return f.Ref
		}
	}
	return ""
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
	words = Flagless(words)
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
		if base == StartScript || path.Clean(s) == "." {
			return true
		}
	}
	return false
}

// SiteBases returns what the lint knows of a FROM reference on a site that
// builds images: a site image provides the start script when its
// Dockerfile (read returns it; ok is false when it cannot be read, e.g. a
// course repo not fetched) installs or inherits it. Anything else is
// BaseOf.
func SiteBases(images []string, read func(image string) (src []byte, ok bool)) Bases {
	var script func(name string, seen map[string]bool) Base
	script = func(name string, seen map[string]bool) Base {
		src, ok := read(name)
		if !ok || seen[name] {
			return BaseUnknown
		}
		if InstallsStartScript(src) {
			return BaseProvides
		}
		seen[name] = true
		ref := FinalRef(src)
		switch {
		case ref == "":
			return BaseUnknown
		case slices.Contains(images, LocalName(ref)):
			return script(LocalName(ref), seen)
		}
		b, _ := BaseOf(ref)
		return b
	}
	return func(ref string) (Base, bool) {
		if name := LocalName(ref); slices.Contains(images, name) {
			return script(name, map[string]bool{}), true
		}
		return BaseOf(ref)
	}
}
