package images

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/nbhosting/nbh-sync/dockerfile"
	"github.com/nbhosting/nbh-sync/manifest"
)

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

// BaseOf is the start-script knowledge of a FROM reference with no help
// from the site: nbhosting's core images provide it, scratch lacks it,
// anything else is unknown.
func BaseOf(ref string) Base {
	switch name := dockerfile.LocalName(ref); {
	case strings.EqualFold(ref, "scratch"):
		return BaseLacks
	case strings.HasPrefix(name, CoreNamespace):
		return BaseProvides
	}
	return BaseUnknown
}

// Lint checks a Dockerfile: its final stage must end as root, and must
// carry start-in-dir-as-uid.sh in /usr/local/bin — copied there, or
// inherited from its base. base says what is known of the final stage's
// base; nil means BaseOf. Where only the built image can tell (a base from
// elsewhere), it warns and leaves it to the smoke test. A base image by a
// moving tag (:latest or none, and no digest) is a warning, unless the site
// builds it (then its build key follows it). file names the Dockerfile in
// the problems, which carry its line numbers.
func Lint(file string, src []byte, base func(ref string) Base) []manifest.Problem {
	if base == nil {
		base = BaseOf
	}
	var probs []manifest.Problem
	add := func(line int, warn bool, format string, a ...any) {
		probs = append(probs, manifest.Problem{File: file, Line: line, Message: fmt.Sprintf(format, a...), Warning: warn})
	}
	ins := dockerfile.Parse(src)
	stages := map[string]bool{}
	final := -1 // index of the final FROM
	for i, in := range ins {
		if in.Cmd != "FROM" {
			continue
		}
		final = i
		words := dockerfile.Flagless(strings.Fields(in.Args))
		if len(words) == 0 {
			add(in.Line, false, "FROM without an image")
			continue
		}
		ref := words[0]
		// A FROM naming an earlier stage is not a base image, and one the
		// site builds is followed by the build key.
		if !stages[strings.ToLower(ref)] && moving(ref) && base(ref) != BaseProvides {
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

	userLine, user := 0, ""
	for _, in := range ins[final+1:] {
		if in.Cmd == "USER" {
			userLine, user = in.Line, in.Args
		}
	}
	if !InstallsStartScript(src) {
		ref, known := finalRef(src), BaseUnknown
		if ref != "" {
			known = base(ref)
		}
		switch known {
		case BaseProvides:
		case BaseUnknown:
			add(ins[final].Line, true, "FROM %s: cannot check that the base provides %s in /usr/local/bin; the smoke test will (or COPY %s /usr/local/bin/)", ins[final].Args, manifest.StartScript, manifest.StartScript)
		default:
			add(ins[final].Line, false, "the final stage must COPY %s into /usr/local/bin (e.g. COPY %s /usr/local/bin/), or build FROM an image that does", manifest.StartScript, manifest.StartScript)
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

// InstallsStartScript reports whether the final stage of a Dockerfile
// copies the start script into /usr/local/bin itself.
func InstallsStartScript(src []byte) bool {
	ins := dockerfile.Parse(src)
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

// finalRef is the reference of the final FROM ("" when that FROM names an
// earlier stage: the stage's own base was judged with it).
func finalRef(src []byte) string {
	for _, f := range dockerfile.Froms(src) {
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
	words = dockerfile.Flagless(words)
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

// SiteBases returns what the lint knows of a FROM reference on a site that
// builds images: a site image provides the start script when its
// Dockerfile (read returns it; ok is false when it cannot be read, e.g. a
// course repo not fetched) installs or inherits it. Anything else is
// BaseOf.
func SiteBases(images []string, read func(image string) (src []byte, ok bool)) func(ref string) Base {
	var base func(ref string, seen map[string]bool) Base
	base = func(ref string, seen map[string]bool) Base {
		name := dockerfile.LocalName(ref)
		if !slices.Contains(images, name) {
			return BaseOf(ref)
		}
		src, ok := read(name)
		if !ok || seen[name] {
			return BaseUnknown
		}
		if InstallsStartScript(src) {
			return BaseProvides
		}
		seen[name] = true
		if r := finalRef(src); r != "" {
			if b := base(r, seen); b != BaseProvides {
				return b
			}
			return BaseProvides
		}
		return BaseUnknown
	}
	return func(ref string) Base { return base(ref, map[string]bool{}) }
}
