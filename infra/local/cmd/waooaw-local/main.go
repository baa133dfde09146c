// Command waooaw-local runs the platform on one machine with no cloud account.
//
//	waooaw-local run [-clock real|virtual] [-fresh] [-meter]
//	                                      start the local stack until Ctrl-C (`make run`)
//	waooaw-local token -role R -subject S [-engagement E] [-ttl 1h]
//	                                      print a bearer token the running stack accepts
//	waooaw-local emulators -- CMD ARGS    run CMD with a fresh pair of emulators (`make test`)
//	waooaw-local package [-out dist] [NAME...]
//	                                      write dist/<function>.zip, each building alone
//
// Every command takes -root (the repository, found from the current folder by default) and
// -state (default <root>/.local).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/funczip"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/infra/local/workflows"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: waooaw-local run [-clock real|virtual] [-fresh] [-meter] | token -role R -subject S [-engagement E] | emulators -- CMD [ARGS] | package [-out DIR] [NAME...]`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer) error{
		"run":       cmdRun,
		"token":     cmdToken,
		"emulators": cmdEmulators,
		"package":   cmdPackage,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	err := f(args[1:], stdout)
	var exit exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return int(exit)
	case errors.Is(err, flag.ErrHelp):
		return 2
	default:
		fmt.Fprintln(stderr, "waooaw-local "+args[0]+": "+err.Error())
		return 1
	}
}

// exitError carries a child's exit status through unchanged.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// common are the flags every command takes.
type common struct {
	root, state string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.root, "root", "", "repository root (default: found from the current folder)")
	fs.StringVar(&c.state, "state", "", "state folder (default: <root>/.local)")
}

func (c *common) resolve() error {
	if c.root == "" {
		r, err := infraspec.RepoRoot(".")
		if err != nil {
			return err
		}
		c.root = r
	}
	root, err := filepath.Abs(c.root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	c.root = root
	if c.state == "" {
		c.state = filepath.Join(c.root, ".local")
	}
	state, err := filepath.Abs(c.state)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	c.state = state
	return nil
}

func parse(name string, args []string, setup func(*flag.FlagSet)) (*common, *flag.FlagSet, error) {
	var c common
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.register(fs)
	if setup != nil {
		setup(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return &c, fs, c.resolve()
}

func cmdRun(args []string, stdout io.Writer) error {
	var clock string
	var fresh, metered bool
	c, _, err := parse("run", args, func(fs *flag.FlagSet) {
		fs.StringVar(&clock, "clock", workflows.ClockReal, "the Workflows emulator's clock: real, or virtual (moved by POST <workflows>/emulator/v1/clock:advance)")
		fs.BoolVar(&fresh, "fresh", false, "start empty: no Firestore data, workflow executions or virtual clock from earlier runs")
		fs.BoolVar(&metered, "meter", false, "count Firestore reads and writes, Pub/Sub messages, function invocations and workflow steps (GET <control>/v1/usage)")
	})
	if err != nil {
		return err
	}
	// Caught from the start, so that SIGINT or SIGTERM always reaches the stop that saves
	// Firestore's data, never the default action.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return stack.Run(ctx, stack.Options{Root: c.root, StateDir: c.state, Out: stdout, Clock: clock, Fresh: fresh, Meter: metered})
}

func cmdToken(args []string, stdout io.Writer) error {
	var role, subject, engagement string
	var ttl time.Duration
	c, _, err := parse("token", args, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", "", "role claim (required)")
		fs.StringVar(&subject, "subject", "", "sub claim (required)")
		fs.StringVar(&engagement, "engagement", "", "engagement claim")
		fs.DurationVar(&ttl, "ttl", time.Hour, "time to live")
	})
	if err != nil {
		return err
	}
	spec, err := stack.LoadSpec(c.root)
	if err != nil {
		return err
	}
	iss, err := stack.Issuer(spec, c.state)
	if err != nil {
		return err
	}
	tok, err := iss.Token(subject, role, engagement, ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// cmdEmulators runs a command with one pair of emulators it starts and always stops, and
// exits with the command's status: `make test` wraps the whole test run in it.
func cmdEmulators(args []string, stdout io.Writer) error {
	c, fs, err := parse("emulators", args, nil)
	if err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("no command given (usage: emulators -- CMD [ARGS])")
	}
	// One handler from the start, so no signal ever meets the default action (which would
	// leave the emulators running): during start-up a signal abandons it, afterwards it is
	// passed on to the command.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan struct{})
	var early os.Signal
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case early = <-sigs:
			cancel()
		case <-started:
		}
	}()
	emu, err := emulators.Start(ctx, emulators.Options{LogDir: filepath.Join(c.state, "logs", "emulators")})
	close(started)
	<-watched
	if err != nil {
		return err
	}
	defer emu.Stop()
	if early != nil {
		return exitError(128 + int(early.(syscall.Signal)))
	}
	fmt.Fprintf(stdout, "emulators: firestore %s, pubsub %s\n", emu.FirestoreHost, emu.PubSubHost)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, os.Stderr
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return hasKey(kv, "FIRESTORE_EMULATOR_HOST") || hasKey(kv, "PUBSUB_EMULATOR_HOST")
	})
	cmd.Env = append(env, emu.Env()...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	// A terminal's Ctrl-C reaches the command directly (same process group); a signal sent
	// to this process only is passed on.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return exitError(128 + int(st.Signal()))
				}
				return exitError(ee.ExitCode())
			}
			return err
		}
	}
}

func hasKey(kv, key string) bool { return strings.HasPrefix(kv, key+"=") }

func cmdPackage(args []string, stdout io.Writer) error {
	var out string
	c, fs, err := parse("package", args, func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "output folder (default <root>/dist)")
	})
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(c.root, "dist")
	}
	dirs, err := funczip.Functions(c.root)
	if err != nil {
		return err
	}
	want := fs.Args()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var failed []string
	for _, d := range dirs {
		name := filepath.Base(d)
		if len(want) > 0 && !slices.Contains(want, name) {
			continue
		}
		if !funczip.HasSource(d) {
			fmt.Fprintf(stdout, "package %s: skipped, no Go source in %s yet\n", name, d)
			continue
		}
		zipPath := filepath.Join(out, name+".zip")
		res, err := funczip.Build(ctx, d, zipPath)
		if err != nil {
			fmt.Fprintf(stdout, "package %s: FAILED: %v\n", name, err)
			failed = append(failed, name)
			continue
		}
		info, err := os.Stat(zipPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "package %s: %s (%.1f MB)\n", name, zipPath, float64(info.Size())/(1<<20))
		if res.Tidied {
			fmt.Fprintf(stdout, "  note: %s/go.mod is not tidy without the workspace; the package was tidied (cd %s && GOWORK=off go mod tidy)\n", name, d)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d function(s) failed to package: %v", len(failed), failed)
	}
	return nil
}
