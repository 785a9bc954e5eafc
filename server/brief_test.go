package server

import "testing"

func TestBriefError(t *testing.T) {
	for _, tc := range []struct{ full, want string }{
		{`fetch https://github.com/parmentelat/flotpython.git: Get "https://github.com/parmentelat/flotpython.git/info/refs?service=git-upload-pack": dial tcp: lookup github.com on 127.0.0.53:53: server misbehaving (retry in 9s)`,
			"github.com unreachable (DNS) — retry in 9s"},
		{`remote https://example.org/dept-courses.git unreachable: dial tcp: lookup example.org: no such host`,
			"example.org unreachable (DNS)"},
		{"remote https://example.org/dept-courses.git unreachable: dial tcp: connection refused (retry in 4m)",
			"example.org refused the connection — retry in 4m"},
		{`fetch ssh://git@git.example.org/site.git: dial tcp 10.0.0.1:22: i/o timeout`,
			"git.example.org did not answer (timeout)"},
		{`fetch git@gitlab.example.org:teaching/intro.git: ssh: handshake failed: authentication required`,
			"gitlab.example.org refused the credentials"},
		{"image intro cannot be built: no Dockerfile at images.intro.dockerfile, .nbhosting/Dockerfile in course intro",
			"no Dockerfile for image intro"},
		{"course intro: branch dev not fetched: reference not found", "branch dev not found"},
		{"build of python-intro failed: step 4/7: exit code 1", "build of python-intro failed"},
		{"image python-intro: build: The command '/bin/sh -c pip install -r requirements.txt' returned a non-zero code: 1",
			"build of image python-intro failed"},
		{"something short", "something short"},
		{"a very long message that goes on and on about a problem nobody anticipated in the first place, with details\nand a second line",
			"a very long message that goes on and on about a problem nobody anticipated in the first…"},
	} {
		if got := briefError(tc.full); got != tc.want {
			t.Errorf("briefError(%q)\n got %q\nwant %q", tc.full, got, tc.want)
		}
	}
}
