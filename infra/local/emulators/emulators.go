// Package emulators starts Google's Firestore and Pub/Sub emulators (through gcloud, as
// installed on the development image) and provisions topics, schemas and subscriptions from
// infra/infrastructure.yaml. The local stack and the tests share it, so both run against the
// same real services set up the same way.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Stack is a pair of running emulators.
type Stack struct {
	FirestoreHost string // host:port, as FIRESTORE_EMULATOR_HOST wants it
	PubSubHost    string // host:port, as PUBSUB_EMULATOR_HOST wants it

	procs []*exec.Cmd
}

// Options tune Start.
type Options struct {
	LogDir        string        // where emulator output goes; "" discards it
	FirestorePort int           // 0 picks a free port
	PubSubPort    int           // 0 picks a free port
	Timeout       time.Duration // how long to wait for both to answer; default 90s
	// FirestoreImport, when set, is an export's overall_export_metadata file (FindExport)
	// that the Firestore emulator loads before it serves; empty starts it empty.
	FirestoreImport string
}

// Start launches both emulators, each in its own process group so Stop can take the Java
// processes that gcloud spawns, and waits until both answer HTTP.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if _, err := exec.LookPath("gcloud"); err != nil {
		return nil, fmt.Errorf("emulators: gcloud not on PATH: %w", err)
	}
	if o.Timeout == 0 {
		o.Timeout = 90 * time.Second
	}
	fsPort, err := portOr(o.FirestorePort)
	if err != nil {
		return nil, err
	}
	psPort, err := portOr(o.PubSubPort)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		FirestoreHost: net.JoinHostPort("127.0.0.1", strconv.Itoa(fsPort)),
		PubSubHost:    net.JoinHostPort("127.0.0.1", strconv.Itoa(psPort)),
	}
	fsArgs := []string{"emulators", "firestore", "start", "--host-port=" + s.FirestoreHost, "--quiet"}
	if o.FirestoreImport != "" {
		fsArgs = append(fsArgs, "--import-data="+o.FirestoreImport)
	}
	specs := []struct {
		name string
		args []string
		host string
	}{
		{"firestore", fsArgs, s.FirestoreHost},
		{"pubsub", []string{"beta", "emulators", "pubsub", "start", "--host-port=" + s.PubSubHost, "--project=waooaw-local", "--quiet"}, s.PubSubHost},
	}
	for _, sp := range specs {
		cmd := exec.Command("gcloud", sp.args...)
		// Its own session, so its own scheduling group (Linux autogroup), as a remote service
		// would be, instead of sharing the CPU share of whoever started it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if o.LogDir != "" {
			if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
				s.Stop()
				return nil, fmt.Errorf("emulators: log dir: %w", err)
			}
			f, err := os.Create(filepath.Join(o.LogDir, sp.name+".log"))
			if err != nil {
				s.Stop()
				return nil, fmt.Errorf("emulators: log file: %w", err)
			}
			cmd.Stdout, cmd.Stderr = f, f
		}
		if err := cmd.Start(); err != nil {
			s.Stop()
			return nil, fmt.Errorf("emulators: start %s: %w", sp.name, err)
		}
		s.procs = append(s.procs, cmd)
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for _, sp := range specs {
		if err := waitHTTP(wctx, "http://"+sp.host+"/"); err != nil {
			s.Stop()
			if sp.name == "firestore" && o.FirestoreImport != "" {
				// The emulator exits when it cannot read the export it was given.
				return nil, fmt.Errorf("emulators: firestore on %s did not start importing %s: %w", sp.host, o.FirestoreImport, err)
			}
			return nil, fmt.Errorf("emulators: %s on %s did not start: %w", sp.name, sp.host, err)
		}
	}
	return s, nil
}

// Pids are the process-group leaders Start created (the gcloud processes).
func (s *Stack) Pids() []int {
	var out []int
	for _, c := range s.procs {
		if c.Process != nil {
			out = append(out, c.Process.Pid)
		}
	}
	return out
}

// Stop ends both emulators and everything they spawned: SIGTERM to each process group, then
// SIGKILL for what is left after a grace period.
func (s *Stack) Stop() {
	reaped := make([]chan struct{}, len(s.procs))
	for i, c := range s.procs {
		reaped[i] = make(chan struct{})
		if c.Process == nil {
			close(reaped[i])
			continue
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		// Reap the leader as soon as it exits: an unreaped zombie still counts as a member
		// of its group, and the wait below would then always last the whole grace period.
		go func() { _ = c.Wait(); close(reaped[i]) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, c := range s.procs {
		if c.Process == nil {
			continue
		}
		for time.Now().Before(deadline) && groupAlive(c.Process.Pid) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-reaped[i]
	}
	s.procs = nil
}

// groupAlive reports whether any process of the group still exists.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// Env exports the emulator hosts the way Google's client libraries look for them.
func (s *Stack) Env() []string {
	return []string{"FIRESTORE_EMULATOR_HOST=" + s.FirestoreHost, "PUBSUB_EMULATOR_HOST=" + s.PubSubHost}
}

func portOr(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return FreePort()
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("emulators: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
