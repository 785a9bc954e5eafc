//go:build race

package server_test

// memScale widens memory bounds under the race detector, whose shadow
// memory multiplies what the heap takes.
const memScale = 4
