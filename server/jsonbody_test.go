package server

import (
	"strings"
	"testing"
)

func TestStrictJSONKeys(t *testing.T) {
	type inner struct {
		Name string `json:"name"`
	}
	type Embedded struct {
		Shared string `json:"shared"`
	}
	type doc struct {
		Embedded
		Plain   string            // no tag: its Go name
		Items   []inner           `json:"items"`
		ByName  map[string]*inner `json:"by_name"`
		Any     any               `json:"any"`
		Skipped string            `json:"-"`
	}
	for _, tc := range []struct {
		name, in, err string // err: "" for none, else a part of it
	}{
		{"exact keys", `{"shared":"s","Plain":"p","items":[{"name":"a"}],"by_name":{"X":{"name":"b"}},"any":{"Whatever":1}}`, ""},
		{"top level, another case", `{"SHARED":"s"}`, `unknown field "SHARED" (field names are case-sensitive: want "shared")`},
		{"an untagged field, another case", `{"plain":"p"}`, `unknown field "plain" (field names are case-sensitive: want "Plain")`},
		{"in a list", `{"items":[{"name":"a"},{"Name":"b"}]}`, `unknown field "Name"`},
		{"in a map's values", `{"by_name":{"x":{"NAME":"b"}}}`, `unknown field "NAME"`},
		{"a field left out of JSON", `{"Skipped":"x"}`, `unknown field "Skipped"`},
		{"unknown", `{"other":1}`, `unknown field "other"`},
		{"duplicate", `{"shared":"a","shared":"b"}`, `duplicate key "shared"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := strictJSON([]byte(tc.in), &d)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}
