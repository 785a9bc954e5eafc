// Package githash is a git commit as nbh-sync's JSON documents and state
// files carry it: its hexadecimal form, as git shows it.
package githash

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Hash is a git commit (go-git's plumbing.Hash converts to it and back).
// It is written as 40 hex digits; plumbing.Hash itself, a byte array, was
// written as an array of 20 numbers, which nobody can read, and which
// Hash still reads so that state files written that way load.
type Hash [20]byte

// String returns the commit's hexadecimal form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is no commit (omitzero leaves it out).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText writes the hexadecimal form.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads the hexadecimal form.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("git commit %q: want %d hex digits", b, 2*len(h))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("git commit %q: %w", b, err)
	}
	return nil
}

// UnmarshalJSON reads the hexadecimal form, or the array of 20 numbers
// of files written before.
func (h *Hash) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var a [20]byte
		if err := json.Unmarshal(b, &a); err != nil {
			return fmt.Errorf("git commit: %w", err)
		}
		*h = a
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("git commit: %w", err)
	}
	return h.UnmarshalText([]byte(s))
}
