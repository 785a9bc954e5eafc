package containers

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"

	"github.com/nbhosting/nbh-sync/manifest"
)

// ErrBadPath: the path of a deep link is not acceptable.
var ErrBadPath = errors.New("invalid notebook path")

// MaxNotebookPathLen bounds the path of a deep link.
const MaxNotebookPathLen = 1024

// CheckNotebookPath returns an ErrBadPath error unless p is a path a deep
// link may open: relative to the server's root, clean (no ., .., empty
// segment or trailing slash), without backslashes or control characters.
// What the link opens must stay inside the student's work whichever
// server reads it, and the front door refuses a request whose path holds
// dot segments or backslashes anyway.
func CheckNotebookPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadPath)
	case len(p) > MaxNotebookPathLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadPath, MaxNotebookPathLen)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w %q: want a path relative to the server's root, e.g. week1/intro.ipynb", ErrBadPath, p)
	case strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }):
		return fmt.Errorf("%w %q: no backslashes or control characters", ErrBadPath, p)
	case path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%w %q: want a clean path (no ., .., // or trailing /), e.g. week1/intro.ipynb", ErrBadPath, p)
	}
	return nil
}

// NotebookPath returns the path, under a server's base URL, that opens the
// notebook p (checked by CheckNotebookPath) in ui: lab/tree/P in
// JupyterLab, notebooks/P in the classic notebook (nbclassic, Notebook 6
// and Notebook 7 alike). ui is lab or classic: a course's auto is resolved
// against its running server first. Each segment is escaped, so that a
// name with spaces, # or ? stays one path.
func NotebookPath(ui manifest.UI, p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	if ui == manifest.UILab {
		return "lab/tree/" + strings.Join(segs, "/")
	}
	return "notebooks/" + strings.Join(segs, "/")
}
