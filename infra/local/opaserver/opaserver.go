// Package opaserver runs the reference `opa run --server` on the platform's policies and
// data document, the yardstick the pdp is measured against: the same OPA version the
// platform embeds, built from the Go module proxy into the user cache once.
package opaserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"waooaw.dev/governance/policies"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/rules"
)

// Version is the OPA the platform embeds (shared/go.mod); the reference server must match.
const Version = "1.22.3"

var (
	buildMu sync.Mutex
	built   string
)

// Binary returns the path of opa Version, building it on first use into
// <user cache>/waooaw/opa-v<Version>/opa, in a throwaway module pinned to that version and
// outside the workspace, so the build neither needs nor touches go.work.sum.
func Binary(ctx context.Context) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if built != "" {
		return built, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("opaserver: user cache dir: %w", err)
	}
	dir := filepath.Join(cache, "waooaw", "opa-v"+Version)
	bin := filepath.Join(dir, "opa")
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil && strings.Contains(string(out), "Version: "+Version) {
		built = bin
		return bin, nil
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", fmt.Errorf("opaserver: %w", err)
	}
	mod := "module waooaw.dev/opa-build\n\ngo 1.26\n\nrequire github.com/open-policy-agent/opa v" + Version + "\n"
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", fmt.Errorf("opaserver: %w", err)
	}
	// Built aside and renamed into place, so a concurrent build elsewhere never runs half a file.
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, "github.com/open-policy-agent/opa")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("opaserver: go build opa v%s: %w\n%s", Version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("opaserver: install opa: %w", err)
	}
	built = bin
	return bin, nil
}

// WriteBundle writes into dir the policies (without their tests) and data.json, the exact
// document the engine mounts at data.platform given overrides (nil: the embedded data only,
// as the pdp runs without PDP_DATA_FILE).
func WriteBundle(dir string, overrides map[string]any) error {
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		return fmt.Errorf("opaserver: %w", err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		src, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			return fmt.Errorf("opaserver: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), src, 0o644); err != nil {
			return fmt.Errorf("opaserver: %w", err)
		}
	}
	set, err := rules.Load(tables.FS)
	if err != nil {
		return fmt.Errorf("opaserver: %w", err)
	}
	data, err := policy.PlatformData(policies.FS, set, overrides)
	if err != nil {
		return fmt.Errorf("opaserver: %w", err)
	}
	b, err := json.Marshal(map[string]any{policy.DataRoot: data})
	if err != nil {
		return fmt.Errorf("opaserver: data: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), b, 0o644); err != nil {
		return fmt.Errorf("opaserver: %w", err)
	}
	return nil
}

// Server is a running `opa run --server`.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	Pid    int
	cmd    *exec.Cmd
	exited chan error
	once   sync.Once
}

// Start runs bin as `opa run --server` on a free loopback port over bundleDir and returns
// once it answers GET /health (or fails with its stderr when it exits or times out).
func Start(ctx context.Context, bin, bundleDir string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opaserver: free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "--server", "--addr", addr, "--log-level", "error", bundleDir)
	// Its own session, hence its own scheduling group (Linux autogroup), as the stack's
	// functions have: the servers compared share the CPU alike.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("opaserver: start %s: %w", bin, err)
	}
	s := &Server{URL: "http://" + addr, Pid: cmd.Process.Pid, cmd: cmd, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait() }()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("opaserver: opa exited before serving: %v\n%s", err, stderr.String())
		case <-deadline.C:
			s.Stop()
			return nil, fmt.Errorf("opaserver: opa not healthy at %s after 60s\n%s", s.URL, stderr.String())
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("opaserver: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	s.once.Do(func() {
		if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return
		}
		<-s.exited
	})
}
