// Package workflows is a local Cloud Workflows emulator: Google's
// Workflows and Executions APIs over REST (and gRPC on the same port),
// callbacks under each execution's name, a real or virtual clock, and
// durable executions under a state directory.
//
//	srv, err := workflows.Start(ctx, workflows.Options{Addr: "127.0.0.1:0", StateDir: dir})
//	defer srv.Close()
//	fmt.Println(srv.URL())
package workflows

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"waooaw.dev/governance/infra/local/workflows/api"
	"waooaw.dev/governance/infra/local/workflows/clock"
	"waooaw.dev/governance/infra/local/workflows/service"
	"waooaw.dev/governance/infra/local/workflows/store"
	"waooaw.dev/governance/infra/local/workflows/ui"
)

// Clock modes.
const (
	ClockReal    = "real"
	ClockVirtual = "virtual"
)

// Options configure Start.
type Options struct {
	Addr     string // host:port; "127.0.0.1:0" picks a free port
	StateDir string // empty keeps state in memory only
	Clock    string // ClockReal (default) or ClockVirtual
	// VirtualStart is where a virtual clock starts (default: now).
	VirtualStart time.Time
	Logf         func(format string, args ...any)
	// Token, when set, mints the bearer token an http.* call with
	// `auth: {type: OIDC|OAuth2}` sends (e.g. from the local identity
	// provider); without it such calls go without a token.
	Token func(kind, audience string) (string, error)
	// InternalHosts are hosts ("host:port" or "host") that stand for Google Cloud
	// services, such as the local stack's functions: the step counters
	// (/emulator/v1/usage) bill a request to one as an internal step, as Cloud Workflows
	// bills a Cloud Run functions invocation. Google's own domains always are internal.
	InternalHosts []string
}

// Server is a running emulator.
type Server struct {
	Service *service.Service
	srv     *http.Server
	ln      net.Listener
	url     string
	done    chan struct{}
	once    sync.Once
	err     error
}

// Start listens on opts.Addr and serves until Close or ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	var clk clock.Clock = clock.Real{}
	switch opts.Clock {
	case "", ClockReal:
	case ClockVirtual:
		start := opts.VirtualStart
		if start.IsZero() {
			start = time.Now()
		}
		// A virtual clock carries on from where it stood before a restart.
		if saved, err := readClock(opts.StateDir); err == nil && saved.After(start) {
			start = saved
		}
		clk = clock.NewVirtual(start)
	default:
		return nil, fmt.Errorf("workflows: unknown clock %q (real or virtual)", opts.Clock)
	}
	var st *store.Store
	if opts.StateDir != "" {
		var err error
		if st, err = store.Open(opts.StateDir); err != nil {
			return nil, fmt.Errorf("workflows: start: %w", err)
		}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("workflows: listen %s: %w", opts.Addr, err)
	}
	s := &Server{ln: ln, url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	var onAdvance func(time.Time)
	if opts.StateDir != "" {
		onAdvance = func(now time.Time) {
			if err := writeClock(opts.StateDir, now); err != nil && opts.Logf != nil {
				opts.Logf("%v", err)
			}
		}
	}
	svc, err := service.New(service.Options{Store: st, Clock: clk, BaseURL: s.URL, Logf: opts.Logf, OnAdvance: onAdvance, Token: opts.Token,
		InternalHosts: opts.InternalHosts})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("workflows: start: %w", err)
	}
	s.Service = svc
	grpcSrv := api.NewGRPC(svc)
	rest := api.NewHandler(svc)
	mux := http.NewServeMux()
	mux.Handle("/v1/", rest)
	mux.Handle("/emulator/v1/", api.EmulatorHandler(svc))
	mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler(svc)))
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			grpcSrv.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.srv = &http.Server{Handler: root, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && opts.Logf != nil {
			opts.Logf("workflows: serve: %v", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

// URL is the emulator's base URL, e.g. "http://127.0.0.1:8089".
func (s *Server) URL() string { return s.url }

// Addr is the listening host:port (also the gRPC endpoint).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving. Executions on disk stay as they were and resume on
// the next Start with the same StateDir.
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		s.Service.Close()
		if err != nil {
			s.err = fmt.Errorf("workflows: close: %w", err)
		}
	})
	return s.err
}

const clockFile = "virtual-clock"

func readClock(dir string) (time.Time, error) {
	if dir == "" {
		return time.Time{}, os.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(dir, clockFile))
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
}

func writeClock(dir string, now time.Time) error {
	tmp := filepath.Join(dir, clockFile+".tmp")
	if err := os.WriteFile(tmp, []byte(now.UTC().Format(time.RFC3339Nano)), 0o644); err != nil {
		return fmt.Errorf("workflows: save clock: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, clockFile)); err != nil {
		return fmt.Errorf("workflows: save clock: %w", err)
	}
	return nil
}
