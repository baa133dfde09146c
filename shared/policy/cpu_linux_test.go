//go:build linux

package policy_test

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time of the calling OS thread. Benchmarks lock their
// goroutine to a thread and report it beside wall time: on a shared machine
// it shows the cost of a decision without the time spent waiting for a core.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
