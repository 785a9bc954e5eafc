//go:build !race

package server_test

const memScale = 1
