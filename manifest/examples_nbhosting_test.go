package manifest

import (
	"os"
	"testing"
)

// TestNbhostingExampleLoads keeps examples/nbhosting/courses.yaml, the
// site moved from nbhosting that docs/migrating-from-nbhosting.md shows,
// valid and meaning what its comments say.
func TestNbhostingExampleLoads(t *testing.T) {
	data, err := os.ReadFile("../examples/nbhosting/courses.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, warns, err := Parse("examples/nbhosting/courses.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	for name, co := range c.Courses {
		cc := co.Container
		if co.Idle.Std().Hours() != 2 || co.Lingering.Std().Hours() != 24 || cc.Memory != 5<<30 ||
			cc.Preset != PresetNbhosting || cc.User != DefaultUser || cc.Entrypoint != nil {
			t.Errorf("%s: %+v", name, co)
		}
	}
}
