package stack

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// group is a child process started in a process group of its own, so that stopping it also
// stops whatever it spawned.
type group struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, valid after done
}

// startGroup starts cmd as the leader of a new process group, output appended to logPath.
func startGroup(name string, cmd *exec.Cmd, logPath string) (*group, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("stack: %s log: %w", name, err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	// A session of its own, not only a process group: Linux schedules each session as one
	// group (autogroup), so a function, an emulator and whoever drives them share the CPU as
	// separate machines would, rather than the whole stack sharing one group's share.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	g := &group{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		g.err = cmd.Wait()
		log.Close()
		close(g.done)
	}()
	return g, nil
}

func (g *group) pgid() int { return g.cmd.Process.Pid }

// exited reports whether the leader has ended.
func (g *group) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, then SIGKILL to what is left after grace.
func (g *group) stop(grace time.Duration) {
	_ = syscall.Kill(-g.pgid(), syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && groupAlive(g.pgid()) {
		time.Sleep(25 * time.Millisecond)
	}
	_ = syscall.Kill(-g.pgid(), syscall.SIGKILL)
	<-g.done
}

// groupAlive reports whether any process of the group still exists.
func groupAlive(pgid int) bool { return syscall.Kill(-pgid, 0) == nil }
