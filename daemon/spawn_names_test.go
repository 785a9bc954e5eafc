package daemon

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/testenv"
	"github.com/nbhosting/nbh-sync/server"
	"github.com/nbhosting/nbh-sync/site"
)

// TestSpawnAmbiguousStudent400: a student name that would make a container
// name readable as another course's student (course a + student x-y and
// course a-x + student y are both a-x-x-y), or a deep link's path that
// leaves the server's root, is refused by the API with 400 and says why;
// nothing reaches the engine (none is needed here).
func TestSpawnAmbiguousStudent400(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(config, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"courses.yaml":        "version: 1\ncourses:\n  a: {repo: .}\n",
		"images/a.dockerfile": "FROM scratch\nCOPY start-in-dir-as-uid.sh /usr/local/bin/\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(config, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Git(t, config, "init", "-q", "-b", "main")
	testenv.Git(t, config, "add", "-A")
	testenv.Git(t, config, "commit", "-q", "-m", "course a")
	st, err := site.New(site.Options{Config: config, Root: filepath.Join(dir, "root")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Backend: backend{&daemon{site: st}}, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		student string
		code    int
		says    string
		path    string // of a deep link
	}{
		{"x-y", http.StatusBadRequest, `must not contain \"-x-\" nor start with \"x-\"`, ""},
		{"b-x-c", http.StatusBadRequest, `must not contain \"-x-\" nor start with \"x-\"`, ""},
		{"../b", http.StatusBadRequest, "invalid student name", ""},
		{"b", http.StatusBadRequest, `invalid notebook path \"../c/x.ipynb\"`, "../c/x.ipynb"},
		{"b", http.StatusBadRequest, "want a path relative to the server's root", "/etc/passwd"},
	} {
		body := `{"course":"a","student":"` + tt.student + `"`
		if tt.path != "" {
			body += `,"path":"` + tt.path + `"`
		}
		req := httptest.NewRequest(http.MethodPost, "/api/spawn", strings.NewReader(body+"}"))
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.says) {
			t.Errorf("spawn a %s: %d %s; want %d saying %s", tt.student, rec.Code, rec.Body, tt.code, tt.says)
		}
	}
}
