package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// strictJSON decodes data into v refusing what encoding/json lets pass: a
// key given twice (which of the two counts depends on the parser: a proxy
// and the daemon could read different requests), unknown fields, and
// anything after the value.
func strictJSON(data []byte, v any) error {
	if err := duplicateKey(data); err != nil {
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
