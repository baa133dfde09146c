//go:build !linux

package policy_test

import "time"

func threadCPU() time.Duration { return 0 }
