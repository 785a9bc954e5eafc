package main

import (
	"reflect"
	"testing"

	"github.com/nbhosting/nbh-sync/api"
	"github.com/nbhosting/nbh-sync/history"
	"github.com/nbhosting/nbh-sync/site"
)

// TestDocumentsHaveNoByteArrays: no document a command prints with --json
// carries a byte array, which encoding/json writes as an array of numbers
// (git commits once came out as [171,0,…]: go-git's plumbing.Hash).
func TestDocumentsHaveNoByteArrays(t *testing.T) {
	for _, doc := range []any{site.SyncReport{}, api.Plan{}, api.Status{}, why{}, history.Record{}, spawnOutput{}, api.SyncResult{}} {
		seen := map[reflect.Type]bool{}
		var walk func(typ reflect.Type, path string)
		walk = func(typ reflect.Type, path string) {
			if seen[typ] {
				return
			}
			seen[typ] = true
			switch typ.Kind() {
			case reflect.Array:
				if typ.Elem().Kind() == reflect.Uint8 && !typ.Implements(reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()) {
					t.Errorf("%s: %s is written as an array of numbers", path, typ)
				}
				walk(typ.Elem(), path+"[]")
			case reflect.Pointer, reflect.Slice, reflect.Map:
				walk(typ.Elem(), path+"[]")
			case reflect.Struct:
				for f := range typ.Fields() {
					if f.IsExported() && f.Tag.Get("json") != "-" {
						walk(f.Type, path+"."+f.Name)
					}
				}
			}
		}
		typ := reflect.TypeOf(doc)
		walk(typ, typ.String())
	}
}
