package dockerfile

import (
	"slices"
	"testing"
)

func TestFroms(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []From
	}{
		{"one", "FROM nbhosting/scipy-notebook\nRUN true\n", []From{{Ref: "nbhosting/scipy-notebook", Line: 1, Final: true}}},
		{"continued and flagged", "# syntax=x\nFROM \\\n  --platform=linux/amd64 base:1 AS b\n", []From{{Ref: "base:1", Line: 2, Final: true}}},
		{"stages", "FROM a AS build\nRUN make\nFROM b\nCOPY --from=build /x /x\n", []From{{Ref: "a", Line: 1}, {Ref: "b", Line: 3, Final: true}}},
		{"final from a stage", "FROM a AS build\nFROM build\n", []From{{Ref: "a", Line: 1}}},
		{"none", "RUN true\n", nil},
	} {
		if got := Froms([]byte(tc.src)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Froms = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestLocalName(t *testing.T) {
	for ref, want := range map[string]string{
		"nbhosting/scipy-notebook":             "nbhosting/scipy-notebook",
		"nbhosting/scipy-notebook:latest":      "nbhosting/scipy-notebook",
		"localhost/nbhosting/minimal-notebook": "nbhosting/minimal-notebook",
		"course-a":                             "course-a",
		"registry:5000/x":                      "registry:5000/x",
		"nbhosting/scipy-notebook:nb6":         "",
		"x@sha256:abc":                         "",
		"${BASE}":                              "",
	} {
		if got := LocalName(ref); got != want {
			t.Errorf("LocalName(%q) = %q, want %q", ref, got, want)
		}
	}
}
