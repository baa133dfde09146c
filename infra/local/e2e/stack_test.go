package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/stack"
)

// running is the one stack every test of this package shares: `waooaw-local run
// --clock=virtual` on a state folder of its own, as a user starts it with
// `make run CLOCK=virtual`.
type running struct {
	root, state, bin string
	mu               sync.Mutex
	cmd              *exec.Cmd
	out              *bytes.Buffer
	exited           chan error
	local            *apiclient.Local
}

var (
	shared  *running
	initErr error
)

func TestMain(m *testing.M) {
	code := func() int {
		s, err := start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: could not start the local stack:", err)
			return 1
		}
		shared = s
		code := m.Run()
		if err := s.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			code = 1
		}
		if code == 0 {
			os.RemoveAll(filepath.Dir(s.state))
		} else {
			fmt.Fprintln(os.Stderr, "e2e: the stack's state and logs are kept in", s.state)
		}
		return code
	}()
	os.Exit(code)
}

func start() (*running, error) {
	root, err := infraspec.RepoRoot(".")
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "waooaw-e2e-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(state, "waooaw-local")
	build := exec.Command("go", "build", "-o", bin, "./infra/local/cmd/waooaw-local")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build waooaw-local: %w\n%s", err, b)
	}
	s := &running{root: root, state: filepath.Join(state, "state"), bin: bin}
	if err := s.launch(); err != nil {
		return nil, err
	}
	return s, nil
}

// launch starts the stack and waits until it has written endpoints.json.
func (s *running) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	os.Remove(filepath.Join(s.state, stack.EndpointsFile))
	s.out = &bytes.Buffer{}
	// Metered, so the benchmarks read what one request costs; the tests run through the
	// meter's proxies as everything else does.
	cmd := exec.Command(s.bin, "run", "-root", s.root, "-state", s.state, "--clock=virtual", "--meter")
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// The emulators inherit the test's environment otherwise: the stack starts its own.
	cmd.Env = append(os.Environ(), "FIRESTORE_EMULATOR_HOST=", "PUBSUB_EMULATOR_HOST=")
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, s.exited)
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(s.state, stack.EndpointsFile)); err == nil {
			break
		}
		select {
		case err := <-s.exited:
			return fmt.Errorf("waooaw-local run exited before it was up (%v):\n%s", err, s.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no endpoints.json after 4 minutes:\n%s", s.out.String())
		}
	}
	l, err := apiclient.OpenLocal(s.root, s.state)
	if err != nil {
		return err
	}
	s.local = l
	return nil
}

// stop interrupts the stack as Ctrl-C does and waits for it to finish.
func (s *running) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-s.exited:
		s.cmd = nil
		return err
	case <-time.After(90 * time.Second):
		_ = s.cmd.Process.Kill()
		s.cmd = nil
		return fmt.Errorf("waooaw-local still up 90 s after SIGINT:\n%s", s.out.String())
	}
}

// restart stops the stack cleanly and starts it again on the same state folder.
func (s *running) restart(t *testing.T) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.launch(); err != nil {
		t.Fatalf("start again: %v", err)
	}
}

// client is the stack's client; it changes after a restart.
func (s *running) client() *apiclient.Local {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local
}

// ctxFor is a context bounded for one scenario.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
