package stack

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestAcquireLock(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, state string) func() // returns a cleanup
		wantRun bool                                    // want *RunningError
	}{
		{"fresh folder", func(*testing.T, string) func() { return func() {} }, false},
		{"stale pid file of a dead run", func(t *testing.T, state string) func() {
			if err := os.WriteFile(filepath.Join(state, LockFile), []byte("999999999\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, false},
		{"held by a live run", func(t *testing.T, state string) func() {
			l, err := AcquireLock(state)
			if err != nil {
				t.Fatal(err)
			}
			return l.Release
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			state := t.TempDir()
			defer c.prepare(t, state)()
			l, err := AcquireLock(state)
			var running *RunningError
			if got := errors.As(err, &running); got != c.wantRun {
				t.Fatalf("AcquireLock error = %v, want RunningError %v", err, c.wantRun)
			}
			if c.wantRun {
				if running.Pid != os.Getpid() {
					t.Errorf("RunningError names pid %d, holder is %d", running.Pid, os.Getpid())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readPid(filepath.Join(state, LockFile)); got != os.Getpid() {
				t.Errorf("lock file holds pid %d, want %d", got, os.Getpid())
			}
			l.Release()
			again, err := AcquireLock(state)
			if err != nil {
				t.Fatalf("lock not free after Release: %v", err)
			}
			again.Release()
		})
	}
}
