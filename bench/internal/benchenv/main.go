package benchenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Scale is the size of a container-pass benchmark's world, from its flags.
type Scale struct{ N, Running, Courses, Rounds, Workers int }

// ScaleFlags registers -n, -running, -courses, -rounds and -workers; what
// names what -n makes (containers, services).
func ScaleFlags(what string) *Scale {
	s := &Scale{}
	flag.IntVar(&s.N, "n", 1000, what+" to create")
	flag.IntVar(&s.Running, "running", 50, "of which running the fake Jupyter server")
	flag.IntVar(&s.Courses, "courses", 10, "courses they are spread over")
	flag.IntVar(&s.Rounds, "rounds", 3, "timed rounds of each side, interleaved")
	flag.IntVar(&s.Workers, "workers", 8, "concurrent engine calls while setting up and cleaning up")
	return s
}

// Main parses the flags and runs run until it returns or an interrupt
// cancels its context; an error is printed after name and exits 1.
func Main(name string, run func(ctx context.Context) error) {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		stop()
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
