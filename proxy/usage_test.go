package proxy

import "testing"

func TestIsNotebookPage(t *testing.T) {
	for _, tc := range []struct {
		rest string
		want bool
	}{
		{"notebooks/intro.ipynb", true},
		{"notebooks/week1/ex%201.ipynb", true},
		{"lab/tree/intro.ipynb", true},
		{"doc/tree/a/b.ipynb", true},
		{"api/contents/intro.ipynb", false},
		{"files/intro.ipynb", false},
		{"notebooks/data.csv", false},
		{"lab", false},
		{"tree", false},
	} {
		if got := IsNotebookPage(tc.rest); got != tc.want {
			t.Errorf("IsNotebookPage(%q) = %v, want %v", tc.rest, got, tc.want)
		}
	}
}
