package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// Profiles of one command, for whoever asks why it is slow: the CPU
// profile of the whole run, the allocations it made (go tool pprof reads
// both; take them in separate runs: recording every allocation slows the
// command) and its execution trace, where the wall time goes when the
// command waits (go tool trace), written where these environment
// variables say. They are
// read by run, before the command line is parsed, so that the profile
// covers all of it.
const (
	envCPUProfile = "NBH_CPUPROFILE"
	envMemProfile = "NBH_MEMPROFILE"
	envTrace      = "NBH_TRACE"
)

// startProfiles starts what the environment asks for and returns the
// function that writes the profiles; problems go to stderr, never fail the
// command.
func startProfiles(stderr io.Writer) (stop func()) {
	cpu, mem, tr := os.Getenv(envCPUProfile), os.Getenv(envMemProfile), os.Getenv(envTrace)
	if cpu == "" && mem == "" && tr == "" {
		return func() {}
	}
	var traceFile *os.File
	if tr != "" {
		f, err := os.Create(tr)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "nbh-sync: %s: %v\n", envTrace, err)
		} else {
			traceFile = f
		}
	}
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.Create(cpu)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "nbh-sync: %s: %v\n", envCPUProfile, err)
		} else {
			cpuFile = f
		}
	}
	if mem != "" {
		// Every allocation, not a sample: a command is short.
		runtime.MemProfileRate = 1
	}
	return func() {
		if traceFile != nil {
			trace.Stop()
			traceFile.Close()
		}
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			f, err := os.Create(mem)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintf(stderr, "nbh-sync: %s: %v\n", envMemProfile, err)
			}
		}
	}
}
