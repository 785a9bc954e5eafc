package images

import (
	"fmt"
	"github.com/nbhosting/nbh-sync/dockerfile"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		want []string // "line:E|W:substring"
	}{
		{"good", "FROM python:3.12@sha256:abc\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", nil},
		{"good tag, json copy, user back to root", "FROM debian:12\nUSER jovyan\nCOPY [\"start-in-dir-as-uid.sh\", \"/usr/local/bin/start-in-dir-as-uid.sh\"]\nUSER root\n", nil},
		{"no copy, external base", "FROM debian:12\nRUN true\n", []string{"1:W:the smoke test will"}},
		{"no copy, scratch", "FROM scratch\nCOPY x /x\n", []string{"1:E:must COPY"}},
		{"no copy, nbhosting core image", "FROM nbhosting/scipy-notebook\nRUN true\n", []string{"1:W:moving tag"}},
		{"copy elsewhere", "FROM debian:12\nCOPY start-in-dir-as-uid.sh /opt/\n", []string{"1:W:the smoke test will"}},
		{"add with chown", "FROM debian:12\nADD --chown=0:0 start-in-dir-as-uid.sh /usr/local/bin\n", nil},
		{"latest", "FROM debian:latest\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"1:W:moving tag"}},
		{"no tag, registry port", "FROM localhost:5000/jupyter/base\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"1:W:moving tag"}},
		{"platform flag", "FROM --platform=linux/amd64 debian\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"1:W:moving tag"}},
		{"scratch and args", "ARG B=debian\nFROM ${B}\nFROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", nil},
		{"ends as user", "FROM debian:12\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nUSER 1000:100\n", []string{"3:E:must end as root"}},
		{"ends as 0", "FROM debian:12\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nUSER 0:0\n", nil},
		{"user variable", "FROM debian:12\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nUSER $NB_USER\n", []string{"3:W:cannot tell"}},
		{"multi-stage: only the final stage", "FROM golang:1.26 AS build\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\nUSER nobody\nFROM debian:12\nCOPY --from=build /x /x\n",
			[]string{"4:W:the smoke test will"}},
		{"multi-stage: from a stage is no base", "FROM debian:12 AS base\nFROM base\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", nil},
		{"continuations and comments", "FROM debian:12\nRUN apt-get update && \\\n# a comment inside\n    apt-get install -y x\nUSER \\\n  jovyan\nCOPY start-in-dir-as-uid.sh \\\n     /usr/local/bin/\n",
			[]string{"5:E:must end as root"}},
		{"escape directive", "# escape=`\nFROM debian:12\nUSER `\n  jovyan\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
			[]string{"3:E:must end as root"}},
		{"a late directive is a comment", "FROM debian:12\n# escape=`\nUSER root `\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", nil},
		{"lowercase instructions", "from debian:12\ncopy start-in-dir-as-uid.sh /usr/local/bin/\nuser nobody\n", []string{"3:E:must end as root"}},
		{"no FROM", "# nothing\n", []string{"0:E:no FROM"}},
		{"ADD of a URL", "FROM debian:12\nADD http://127.0.0.1:8787/api/status /s\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"2:E:RUN step instead"}},
		{"ADD of a URL, json form and flags", "FROM debian:12\nADD --chmod=644 [\"https://example.org/x\", \"/x\"]\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"2:E:ADD https://example.org/x"}},
		{"ADD of a git remote", "FROM debian:12\nADD git@example.org:x.git /x\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"2:E:remote source"}},
		{"ONBUILD ADD of a URL", "FROM debian:12\nONBUILD ADD http://10.0.0.1/x /x\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", []string{"2:E:remote source"}},
		{"ADD of a local file", "FROM debian:12\nADD data.tar.gz /opt/\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range Lint("Dockerfile", []byte(tc.df), nil) {
				kind := "E"
				if p.Warning {
					kind = "W"
				}
				got = append(got, fmt.Sprintf("%d:%s:%s", p.Line, kind, p.Message))
				if !strings.HasPrefix(p.String(), fmt.Sprintf("Dockerfile:%d", p.Line)) && p.Line > 0 {
					t.Errorf("String() = %q lacks file:line", p.String())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i, w := range tc.want {
				parts := strings.SplitN(w, ":", 3)
				if !strings.HasPrefix(got[i], parts[0]+":"+parts[1]+":") || !strings.Contains(got[i], parts[2]) {
					t.Errorf("problem %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

// A base the site builds is judged by its own Dockerfile, through any
// number of site images.
func TestLintSiteBases(t *testing.T) {
	dfs := map[string]string{
		"nbhosting/scipy-notebook": "FROM jupyter/scipy-notebook:2024\nUSER root\nCOPY start-in-dir-as-uid.sh /usr/local/bin\n",
		"middle":                   "FROM nbhosting/scipy-notebook\nRUN true\n",
		"bare":                     "FROM debian:12\nRUN true\n",
		"loop":                     "FROM loop\n",
	}
	names := []string{"bare", "course", "loop", "middle", "nbhosting/scipy-notebook"}
	base := dockerfile.SiteBases(names, func(image string) ([]byte, bool) {
		df, ok := dfs[image]
		return []byte(df), ok
	})
	for _, tc := range []struct {
		from string
		want string // "" or "E" or "W"
	}{
		{"nbhosting/scipy-notebook", ""},
		{"middle", ""},
		{"localhost/middle:latest", ""},
		{"bare", "W"},   // its base is external: only the smoke test can tell
		{"course", "W"}, // a course image whose Dockerfile is not known here
		{"loop", "W"},
	} {
		probs := Lint("Dockerfile", []byte("FROM "+tc.from+"\nRUN true\n"), base)
		got := ""
		for _, p := range probs {
			if !strings.Contains(p.Message, "moving tag") {
				got = map[bool]string{true: "W", false: "E"}[p.Warning]
			}
		}
		if got != tc.want {
			t.Errorf("FROM %s: problems %v, want %q", tc.from, probs, tc.want)
		}
	}
}
