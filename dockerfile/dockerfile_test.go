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

func TestRewriteFroms(t *testing.T) {
	site := func(ref string) (string, bool) {
		if LocalName(ref) == "base" {
			return "nbh-0123456789/base:latest", true
		}
		return "", false
	}
	tests := []struct{ name, in, want string }{
		{"plain", "FROM base\nRUN true\n", "FROM nbh-0123456789/base:latest\nRUN true\n"},
		{"tagged latest", "from base:latest AS b\n", "from nbh-0123456789/base:latest AS b\n"},
		{"flag", "FROM --platform=linux/amd64 base\n", "FROM --platform=linux/amd64 nbh-0123456789/base:latest\n"},
		{"continued", "FROM \\\n  base\nRUN x\n", "FROM \\\n  nbh-0123456789/base:latest\nRUN x\n"},
		{"crlf", "FROM base\r\nRUN x\r\n", "FROM nbh-0123456789/base:latest\r\nRUN x\r\n"},
		{"not a site image", "FROM debian:12\n", "FROM debian:12\n"},
		{"other tag", "FROM base:1.0\n", "FROM base:1.0\n"},
		{"stage of the same name is not rewritten", "FROM base AS base\nFROM base\n", "FROM nbh-0123456789/base:latest AS base\nFROM base\n"},
		{"multi-stage", "FROM debian AS build\nRUN make\nFROM base\nCOPY --from=build /x /x\n", "FROM debian AS build\nRUN make\nFROM nbh-0123456789/base:latest\nCOPY --from=build /x /x\n"},
		{"comment and directive kept", "# syntax=x\n# FROM base\nFROM base\n", "# syntax=x\n# FROM base\nFROM nbh-0123456789/base:latest\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(RewriteFroms([]byte(tt.in), site)); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
