package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// strictJSON decodes data into v refusing what encoding/json lets pass: a
// key given twice (which of the two counts depends on the parser: a proxy
// and the daemon could read different requests), a key that names a field
// in another case (encoding/json matches them regardless of case, so
// {"student":"zed","STUDENT":"bob"} was bob's), unknown fields, and
// anything after the value. Every JSON body of the API goes through it.
func strictJSON(data []byte, v any) error {
	if err := duplicateKey(data); err != nil {
		return err
	}
	if err := exactKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// duplicateKey returns an error naming the first key an object of data's
// first value holds twice. Syntax errors are left to the decoder.
func duplicateKey(data []byte) error {
	type frame struct {
		keys    map[string]bool
		wantKey bool // an object expecting a key (else a value, or an array)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.keys != nil {
					top.wantKey = true // after this value, a key
				}
				f := &frame{}
				if t == '{' {
					f.keys, f.wantKey = map[string]bool{}, true
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return nil
				}
			}
		default:
			if top == nil || top.keys == nil {
				continue
			}
			if top.wantKey {
				k, _ := t.(string)
				if top.keys[k] {
					return fmt.Errorf("duplicate key %q", k)
				}
				top.keys[k], top.wantKey = true, false
			} else {
				top.wantKey = true
			}
		}
	}
}

// exactKeys returns an error naming the first key of data (in order of
// nesting, then of name) that no field of t spells exactly, where t is the
// type data is decoded into. Syntax errors are left to the decoder.
func exactKeys(data []byte, t reflect.Type) error {
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return nil
	}
	return checkKeys(doc, t)
}

func checkKeys(v any, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			elem := t
			switch t.Kind() {
			case reflect.Map:
				elem = t.Elem()
			case reflect.Struct:
				fields := jsonFields(t)
				ft, ok := fields[k]
				if !ok {
					return unknownField(k, fields)
				}
				elem = ft
			default:
				return nil // a type of its own decoding (or any)
			}
			if err := checkKeys(v[k], elem); err != nil {
				return err
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, x := range v {
				if err := checkKeys(x, t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// jsonFields returns the JSON names of a struct's fields, as encoding/json
// reads them (tags, "-", embedded structs), with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case tag == "-":
			continue
		case f.Anonymous && name == "" && ft.Kind() == reflect.Struct:
			maps.Copy(fields, jsonFields(ft))
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

// unknownField names key, and the field it differs from only in case.
func unknownField(key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Errorf("unknown field %q (field names are case-sensitive: want %q)", key, name)
		}
	}
	return fmt.Errorf("unknown field %q", key)
}
