// Command tool is the static binary the integration tests put in FROM
// scratch images: a few commands that need no shell.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool sleep SECONDS | exit CODE | cat FILE | readlink FILE | chmod MODE FILE | get URL | true")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "true":
	case "sleep":
		n, _ := strconv.Atoi(args[0])
		time.Sleep(time.Duration(n) * time.Second)
	case "exit":
		n, _ := strconv.Atoi(args[0])
		fmt.Println("exiting with", n)
		os.Exit(n)
	case "cat":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "readlink":
		s, err := os.Readlink(args[0])
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(s)
	case "chmod":
		m, _ := strconv.ParseUint(args[0], 8, 32)
		if err := os.Chmod(args[1], os.FileMode(m)); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	case "get":
		// Reports whether a URL answers, and exits 0 either way: a build
		// step that tries to reach what it must not.
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(args[0])
		if err != nil {
			fmt.Println("unreachable:", err)
			return
		}
		resp.Body.Close()
		fmt.Println("reached:", resp.Status)
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}
