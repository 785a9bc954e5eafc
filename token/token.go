// Package token gives each student container its Jupyter token: an
// HMAC-SHA256 of the course and student under one secret key of the site.
//
// Deriving the tokens, rather than drawing and storing one per container,
// means the daemon knows every container's token after a restart (the
// activity probe needs it) while nothing but the key is kept, and no token
// ever has to go into a label or a log line.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// keyBytes is the size of a new key (256 bits, as the HMAC's hash).
const keyBytes = 32

// Source derives tokens from the key at a path. The key is created (mode
// 0600) on first use and read once; a key others can read is refused. It
// is safe for concurrent use, across processes too: a key is created
// whole or not at all, and the first one created wins.
type Source struct {
	path string
	mu   sync.Mutex
	key  []byte
}

// New returns the Source of the key at path (see Path).
func New(path string) *Source { return &Source{path: path} }

// For returns the token of student's container in course.
func (s *Source) For(course, student string) (string, error) {
	key, err := s.load()
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	// The NUL keeps ("a-b", "c") and ("a", "b-c") apart; the prefix keeps
	// this use of the key apart from any later one.
	mac.Write([]byte("nbh-sync jupyter token\x00" + course + "\x00" + student))
	return hex.EncodeToString(mac.Sum(nil)), nil
}

func (s *Source) load() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	key, err := read(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if err = create(s.path); err == nil {
			key, err = read(s.path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("jupyter token key: %w", err)
	}
	s.key = key
	return key, nil
}

func read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s can be read by others (mode %v): chmod 600 it, or delete it and remove the containers made with it", path, st.Mode().Perm())
	}
	b := make([]byte, 4*keyBytes)
	n, err := f.Read(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b[:n])))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("%s: want at least 16 bytes in hex (as `openssl rand -hex 32` writes)", path)
	}
	return key, nil
}

// create writes a new key to a temporary file and links it into place, so
// that a reader never sees half a key and a concurrent creator's key, if it
// came first, is kept.
func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	key := make([]byte, keyBytes)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}
