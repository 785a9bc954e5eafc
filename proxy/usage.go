package proxy

import (
	"net/http"
	"strings"
)

// UsageSink is told what students use through the front door.
type UsageSink interface {
	// NotebookOpened counts a notebook page a student opened.
	NotebookOpened(course, student string)
}

// noteNotebook tells the usage sink of a notebook page opened: a GET of
// the classic notebook page (notebooks/PATH.ipynb) or of JupyterLab's
// (lab/tree/PATH.ipynb, doc/tree/PATH.ipynb) under the server's prefix.
// The notebook's content and its API calls are not pages and do not count.
func (p *Proxy) noteNotebook(r *http.Request, rt Route) {
	if p.opts.Usage == nil || r.Method != http.MethodGet {
		return
	}
	if IsNotebookPage(strings.TrimPrefix(r.URL.Path, rt.BasePath)) {
		p.opts.Usage.NotebookOpened(rt.Course, rt.Student)
	}
}

// IsNotebookPage reports whether rest, a path under a server's prefix, is
// the page of a notebook.
func IsNotebookPage(rest string) bool {
	if !strings.HasSuffix(rest, ".ipynb") {
		return false
	}
	for _, p := range []string{"notebooks/", "lab/tree/", "doc/tree/", "tree/notebooks/"} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}
