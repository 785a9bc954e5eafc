package images

import (
	"os"
	"strings"
	"testing"
)

// busybox returns the static busybox binary for a shell in FROM scratch
// images (Debian package busybox-static), or skips — failing instead under
// NBH_REQUIRE_DOCKER=1.
func busybox(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		msg := "start script test needs a static /bin/busybox (apt-get install busybox-static): %v"
		if os.Getenv("NBH_REQUIRE_DOCKER") == "1" {
			t.Fatalf(msg, err)
		}
		t.Skipf(msg, err)
	}
	return data
}

// TestStartScript runs the built-in start-in-dir-as-uid.sh in busybox
// images (busybox switches with su: its setpriv applet has no --reuid);
// with and without a setpriv applet. In both the
// image has no user for the uid.
func TestStartScript(t *testing.T) {
	t.Parallel()
	eng := requireDocker(t)
	bb := busybox(t)
	mounted := t.TempDir()
	if err := os.WriteFile(mounted+"/keep", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const probe = `id -u; id -g; echo HOME=$HOME; pwd; touch new; stat -c '%u %n' old.txt new ro/keep; grep '^nbh1234:' /etc/passwd | cut -d: -f1,3,6`
	for _, tc := range []struct{ name, extra string }{
		{"busybox (its setpriv cannot switch uid: su)", ""},
		{"no setpriv", `RUN ["/bin/rm", "/bin/setpriv"]` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tag := testName(t, "sh") + ":v1"
			engineBuild(t, eng, tag, map[string]ctxFile{
				"Dockerfile": {data: "FROM scratch\nCOPY busybox /bin/busybox\n" +
					`RUN ["/bin/busybox", "--install", "-s", "/bin"]` + "\n" +
					`RUN ["/bin/busybox", "mkdir", "-p", "/etc", "/tmp", "/home/u/sub"]` + "\n" +
					"COPY passwd group /etc/\nCOPY old.txt /home/u/\nCOPY old.txt /home/u/sub/\n" +
					"COPY start-in-dir-as-uid.sh /usr/local/bin/\n" + tc.extra},
				"busybox":                {data: string(bb), mode: 0o755},
				"passwd":                 {data: "root:x:0:0:root:/root:/bin/sh\n"},
				"group":                  {data: "root:x:0:\n"},
				"old.txt":                {data: "old"},
				"start-in-dir-as-uid.sh": {data: string(StartScript), mode: 0o755},
			}, nil)
			code, out := run(t, eng, tag, ContainerConfig{
				Entrypoint: []string{StartScriptPath},
				Cmd:        []string{"/home/u", "1234", "sh", "-c", probe},
				Binds:      []string{mounted + ":/home/u/ro:ro"},
			})
			want := []string{"1234", "1234", "HOME=/home/u", "/home/u", "1234 old.txt", "1234 new", "0 ro/keep", "nbh1234:1234:/home/u"}
			got := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, strings.Join(want, "\n"))
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		tag := testName(t, "sh") + ":v1"
		engineBuild(t, eng, tag, map[string]ctxFile{
			"Dockerfile":             {data: "FROM scratch\nCOPY busybox /bin/busybox\n" + `RUN ["/bin/busybox", "--install", "-s", "/bin"]` + "\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n"},
			"busybox":                {data: string(bb), mode: 0o755},
			"start-in-dir-as-uid.sh": {data: string(StartScript), mode: 0o755},
		}, nil)
		for _, args := range [][]string{{"/x"}, {"/x", "abc", "true"}} {
			if code, out := run(t, eng, tag, ContainerConfig{Entrypoint: []string{StartScriptPath}, Cmd: args}); code != 2 {
				t.Errorf("%q: exit %d (%s), want 2", args, code, out)
			}
		}
	})
}
