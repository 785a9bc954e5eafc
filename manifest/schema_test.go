package manifest

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	k8syaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite "+SchemaFile+" from the Go types")

// TestSchemaUpToDate fails when the committed JSON Schema and the Go types
// have drifted apart. Fix: go test ./manifest -run TestSchemaUpToDate -update
func TestSchemaUpToDate(t *testing.T) {
	got := Schema()
	if *update {
		if err := os.WriteFile(SchemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(SchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the Go types; run: go test ./manifest -run TestSchemaUpToDate -update", SchemaFile)
	}
}

// TestSchemaValidates checks the schema against real files: the example is
// valid, and typical mistakes are caught by an editor too.
func TestSchemaValidates(t *testing.T) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("courses.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("courses.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	load := func(y string) any {
		j, err := k8syaml.YAMLToJSON([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, f := range []string{"../examples/courses.yaml", "../examples/reference/courses.yaml"} {
		example, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Validate(load(string(example))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := []struct{ name, yaml, want string }{
		{"unknown key", "version: 1\ncourses: {a: {repo: /a, idel: 1h}}\n", "idel"},
		{"bad course name", "version: 1\ncourses: {Bad: {repo: /a}}\n", "Bad"},
		{"missing repo", "version: 1\ncourses: {a: {branch: x}}\n", "repo"},
		{"bad duration", "version: 1\ncourses: {a: {repo: /a, idle: 2 hours}}\n", "idle"},
		{"no courses", "version: 1\n", "courses"},
	}
	for _, tt := range bad {
		err := sch.Validate(load(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: schema error = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}
