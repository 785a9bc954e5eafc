package daemon

import (
	"strings"
	"testing"
)

func TestProxyOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		o    ProxyOptions
		want string // "" for ok, else a part of the error
	}{
		{ProxyOptions{}, ""},
		{ProxyOptions{PublicURL: "https://hub.example.org", LoginURL: "https://lms.example.org/login?x=1"}, ""},
		{ProxyOptions{PublicURL: "https://hub.example.org/"}, ""},
		{ProxyOptions{PublicURL: "hub.example.org"}, `--proxy-public-url "hub.example.org": want an absolute`},
		{ProxyOptions{PublicURL: "https://hub.example.org/jupyter"}, `--proxy-public-url "https://hub.example.org/jupyter": want the site's root`},
		{ProxyOptions{PublicURL: "ftp://hub.example.org"}, "want an absolute http"},
		{ProxyOptions{LoginURL: "/login?from=nbh"}, ""},
		{ProxyOptions{LoginURL: "//evil.example/login"}, `--proxy-login-url "//evil.example/login": want an absolute`},
		{ProxyOptions{LoginURL: "login"}, `--proxy-login-url "login": want an absolute`},
		{ProxyOptions{HostTemplate: "{student}-{course}.nb.example.org", PublicURL: "https://hub.example.org"}, ""},
		{ProxyOptions{HostTemplate: "{student}-{course}.localhost"}, ""},
		{ProxyOptions{HostTemplate: "https://{student}-{course}.nb.example.org"}, `--proxy-host-template "https://{student}-{course}.nb.example.org": want a host name without a scheme`},
		{ProxyOptions{HostTemplate: "{student}.nb.example.org"}, `--proxy-host-template "{student}.nb.example.org": want {course} and {student} once each`},
		{ProxyOptions{HostTemplate: "{student}{course}.nb.example.org"}, "want a '-' between {course} and {student}"},
		{ProxyOptions{HostTemplate: "{student}-{course}.nb.example.org:443"}, "without a port"},
		{ProxyOptions{HostTemplate: "{student}-{course}.nb.example.org", LoginURL: "/login"}, `--proxy-login-url "/login": with --proxy-host-template, want an absolute URL`},
		{ProxyOptions{HostTemplate: "{student}-{course}.nb.example.org", LoginURL: "https://hub.example.org/login"}, ""},
		{ProxyOptions{EmbedAllow: []string{"https://lms.example.org", "http://localhost:8080/"}}, ""},
		{ProxyOptions{EmbedAllow: []string{"lms.example.org"}}, `--proxy-embed-allow: origin "lms.example.org": want scheme://host[:port]`},
		{ProxyOptions{EmbedAllow: []string{"https://lms.example.org/course/1"}}, "want scheme://host[:port]"},
		{ProxyOptions{EmbedAllow: []string{"https://lms.example.org; script-src *"}}, "origin"},
		{ProxyOptions{EmbedAllow: []string{"https://*.example.org"}}, "want scheme://host[:port]"},
	} {
		err := tc.o.check()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("check(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}
