package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
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

// startGroup starts cmd as the leader of a new process group, output written to logPath:
// a new log, or appended to the last one for a restart.
func startGroup(name string, cmd *exec.Cmd, logPath string, appendLog bool) (*group, error) {
	mode := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendLog {
		mode = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	log, err := os.OpenFile(logPath, mode, 0o644)
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

// stop sends SIGTERM to the group, then SIGKILL to what is left after grace. The group is
// gone when it returns.
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

// proc is a service the stack runs as a group and can start again on the same address: a
// function the control endpoint stops and starts, or the Workflows emulator after it died.
type proc struct {
	name    string
	url     string // http://127.0.0.1:PORT, fixed for the stack's lifetime
	logPath string
	newCmd  func() *exec.Cmd // a fresh command each start
	grace   time.Duration

	mu      sync.Mutex
	g       *group // nil while stopped
	started bool   // the log is truncated on the first start only
	closed  bool   // the stack is stopping: no more starts
}

// errClosed says the stack is stopping.
var errClosed = errors.New("stack is stopping")

// start runs the process unless it runs already, and waits until it answers HTTP.
func (p *proc) start(ctx context.Context, timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("stack: start %s: %w", p.name, errClosed)
	}
	if p.g != nil && !p.g.exited() {
		return nil
	}
	g, err := startGroup(p.name, p.newCmd(), p.logPath, p.started)
	if err != nil {
		return err
	}
	p.g, p.started = g, true
	if err := waitAnswer(ctx, p.url, g, timeout); err != nil {
		return fmt.Errorf("stack: %s did not come up on %s (log %s): %w", p.name, p.url, p.logPath, err)
	}
	return nil
}

// stop ends the process group, if running; close also refuses any later start.
func (p *proc) stop(close bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = p.closed || close
	if p.g != nil {
		p.g.stop(p.grace)
		p.g = nil
	}
}

// state reports the group leader's pid (0 when stopped) and whether it still runs.
func (p *proc) state() (pid int, up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.g == nil {
		return 0, false
	}
	return p.g.pgid(), !p.g.exited()
}

// current is the running group, nil when stopped.
func (p *proc) current() *group {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.g
}
