package images

import "testing"

// TestHasLabelsANDsFilters: every label filter must match, as Docker does
// it (podman's API ORs them, so the adapter checks again).
func TestHasLabelsANDsFilters(t *testing.T) {
	have := map[string]string{LabelImage: "flot", LabelBuildKey: "abc"}
	tests := []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{LabelImage}, true},
		{[]string{LabelImage + "=flot"}, true},
		{[]string{LabelImage + "=flot", LabelBuildKey + "=abc"}, true},
		{[]string{LabelImage + "=flot", LabelBuildKey + "=other"}, false},
		{[]string{LabelImage + "=intro"}, false},
		{[]string{"org.example.missing"}, false},
		{[]string{LabelBuildKey + "="}, false},
	}
	for _, tt := range tests {
		if got := hasLabels(have, tt.filters); got != tt.want {
			t.Errorf("hasLabels(%v) = %v, want %v", tt.filters, got, tt.want)
		}
	}
}
