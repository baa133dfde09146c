package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the lock's name inside the state folder; it holds the owner's pid.
const LockFile = "waooaw-local.pid"

// RunningError says another stack holds the state folder.
type RunningError struct {
	Pid      int // 0 when the owner could not be read
	StateDir string
}

func (e *RunningError) Error() string {
	who := "another waooaw-local"
	if e.Pid > 0 {
		who += " (pid " + strconv.Itoa(e.Pid) + ")"
	}
	return fmt.Sprintf("%s is already running on %s: stop it with Ctrl-C in its terminal, or kill %d", who, e.StateDir, e.Pid)
}

// Lock is held by one running stack per state folder.
type Lock struct {
	f *os.File
}

// AcquireLock takes the state folder's lock or returns a *RunningError naming the owner.
// The lock is an flock on a file holding the owner's pid: the kernel drops it when the owner
// dies however it dies, so a stale file never blocks a new run.
func AcquireLock(stateDir string) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("stack: state folder: %w", err)
	}
	path := filepath.Join(stateDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stack: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &RunningError{Pid: readPid(path), StateDir: stateDir}
		}
		return nil, fmt.Errorf("stack: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("stack: write lock: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("stack: write lock: %w", err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up and removes the pid file.
func (l *Lock) Release() {
	os.Remove(l.f.Name())
	l.f.Close()
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
