package containers

import (
	"errors"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/manifest"
)

func TestCheckNotebookPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"intro.ipynb", true},
		{"week 1/intro.ipynb", true},
		{".hidden/x.ipynb", true},
		{"a..b.ipynb", true},
		{"", false},
		{"/etc/passwd", false},
		{"..", false},
		{"../bob/x.ipynb", false},
		{"week1/../../x.ipynb", false},
		{"./x.ipynb", false},
		{"week1//x.ipynb", false},
		{"week1/", false},
		{".", false},
		{`week1\x.ipynb`, false},
		{"x\x00.ipynb", false},
		{"x\n.ipynb", false},
		{strings.Repeat("a", MaxNotebookPathLen+1), false},
	}
	for _, tt := range tests {
		err := CheckNotebookPath(tt.path)
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckNotebookPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
}

func TestNotebookPath(t *testing.T) {
	tests := []struct {
		ui   manifest.UI
		path string
		want string
	}{
		{manifest.UIClassic, "intro.ipynb", "notebooks/intro.ipynb"},
		{manifest.UILab, "intro.ipynb", "lab/tree/intro.ipynb"},
		{manifest.UIClassic, "week 1/q?#.ipynb", "notebooks/week%201/q%3F%23.ipynb"},
		{manifest.UILab, "course/a%2fb.ipynb", "lab/tree/course/a%252fb.ipynb"},
	}
	for _, tt := range tests {
		if got := NotebookPath(tt.ui, tt.path); got != tt.want {
			t.Errorf("NotebookPath(%s, %q) = %q, want %q", tt.ui, tt.path, got, tt.want)
		}
	}
}
