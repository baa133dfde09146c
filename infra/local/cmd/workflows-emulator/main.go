// Command workflows-emulator serves a local Cloud Workflows emulator.
//
//	go run ./infra/local/cmd/workflows-emulator --addr 127.0.0.1:8089 --state .local/workflows
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"waooaw.dev/governance/infra/local/workflows"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8089", "listen address (REST and gRPC)")
	state := flag.String("state", "", "directory for durable state (empty: memory only)")
	clk := flag.String("clock", workflows.ClockReal, "clock: real or virtual (moved by POST /emulator/v1/clock:advance)")
	quiet := flag.Bool("quiet", false, "do not log sys.log calls")
	internal := flag.String("internal-hosts", "", "comma-separated host:port of local stand-ins for Cloud Run functions, counted as internal steps (/emulator/v1/usage)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := log.Printf
	if *quiet {
		logf = func(string, ...any) {}
	}
	var hosts []string
	for h := range strings.SplitSeq(*internal, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	srv, err := workflows.Start(ctx, workflows.Options{Addr: *addr, StateDir: *state, Clock: *clk, Logf: logf, InternalHosts: hosts})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The first line says where it listens; scripts and tests read it.
	fmt.Printf("workflows emulator listening on %s (clock=%s, state=%q)\n", srv.URL(), *clk, *state)
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		log.Print(err)
	}
}
