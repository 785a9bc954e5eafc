package githash_test

import (
	"encoding/json"
	"testing"

	"github.com/nbhosting/nbh-sync/internal/githash"
)

func TestJSON(t *testing.T) {
	h := githash.Hash{0xab, 19: 1}
	const hexForm = `"ab00000000000000000000000000000000000001"`
	b, err := json.Marshal(struct {
		C githash.Hash `json:"c"`
		Z githash.Hash `json:"z,omitzero"`
	}{C: h})
	if err != nil || string(b) != `{"c":`+hexForm+`}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"hex", hexForm, true},
		{"array of a file written before", `[171,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1]`, true},
		{"short", `"ab00"`, false},
		{"not hex", `"zz00000000000000000000000000000000000001"`, false},
		{"number", `12`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got githash.Hash
			err := json.Unmarshal([]byte(tt.in), &got)
			if (err == nil) != tt.ok || (tt.ok && got != h) {
				t.Errorf("unmarshal %s = %s, %v", tt.in, got, err)
			}
		})
	}
}
