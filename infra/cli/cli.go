package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes. Each names what a script can do about it: 1 means asking again the same way
// will not help, 3 that it may, 4 that the audit log needs a human.
const (
	ExitOK          = 0 // done
	ExitRefused     = 1 // the API answered 4xx: its words are printed
	ExitUsage       = 2 // wrong command, flags or arguments (help printed), or input the command cannot use
	ExitUnavailable = 3 // the gateway was not reachable, answered 5xx, or answered something that is not its API
	ExitBroken      = 4 // audit verify found a broken chain
	// ExitInterrupted is the shell's code for a command stopped by SIGINT (Ctrl-C).
	ExitInterrupted = 130
)

// APIError is an answer of the gateway other than 2xx.
type APIError struct {
	Status  int
	Message string // the API's error message, or the body when it is not the API's shape
	Body    []byte
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// unreachableError is a request that got no HTTP answer, or one that was not the API's.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// inputError is input the command cannot use (a file, the config): no help is printed, since
// the command line itself was right.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func inputf(format string, args ...any) error { return &inputError{fmt.Errorf(format, args...)} }

// usageError is a wrong command line: the command's help follows it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return &usageError{fmt.Errorf(format, args...)} }

// errBroken is returned after a verification that found a break was printed.
var errBroken = errors.New("the audit chain is broken")

// ExitCode says which exit code err stands for. Errors the command line's parsing returns
// (cobra's and pflag's) are usage errors.
func ExitCode(err error) int {
	var ae *APIError
	var ue *unreachableError
	var ie *inputError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errBroken):
		return ExitBroken
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ae):
		if ae.Status >= 500 {
			return ExitUnavailable
		}
		return ExitRefused
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		return ExitUnavailable
	case errors.As(err, &ie):
		return ExitUsage
	}
	return ExitUsage
}

// Main runs the command line args and returns its exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(&app{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitCode(err)
	fmt.Fprintln(stderr, "waooaw:", err)
	var ie *inputError
	if code == ExitUsage && !errors.As(err, &ie) && cmd != nil {
		fmt.Fprintln(stderr)
		fmt.Fprint(stderr, cmd.UsageString())
	}
	return code
}

// app is what every command shares: the streams and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath string
	gateway    string
	endpoints  string
	output     string
	timeout    time.Duration
}

func (a *app) json() bool { return a.output == "json" }

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "waooaw",
		Short: "Operate the WaooaW governance platform through its gateway",
		Long: `waooaw operates the platform from outside, through the gateway's public API: the same
tokens, policies and audit log as any client. It works against production (log in with the
identity provider's token) and against the local stack of 'make run' (log in with --local).

Exit codes: 0 ok, 1 the API refused (4xx; its words are printed), 2 usage or unusable input,
3 gateway not reachable or 5xx, 4 audit verify found a broken chain.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return usagef("flag --output: must be table or json, not %q", a.output)
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&a.configPath, "config", "", "config file (default: waooaw/config.json in the user's config directory)")
	f.StringVar(&a.gateway, "gateway", "", "gateway URL (default: the config's, else the local stack's endpoints.json)")
	f.StringVar(&a.endpoints, "endpoints", "", "a local stack's endpoints.json (default: the config's, else .local/endpoints.json of this checkout)")
	f.StringVarP(&a.output, "output", "o", "table", "output: table or json (the API's JSON)")
	f.DurationVar(&a.timeout, "timeout", 2*time.Minute, "how long one API call may take")
	root.AddCommand(newLogin(a), newEngagements(a), newRequests(a), newApprovals(a), newAudit(a))
	return root
}

// group is a command that only holds subcommands: run alone or with an unknown word, it is
// a usage error rather than help on stdout and exit 0.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usagef("%s needs a subcommand", cmd.CommandPath())
		},
	}
	c.AddCommand(subs...)
	return c
}

// exactArgs is cobra.ExactArgs naming the arguments expected.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %s (%d argument(s)), got %d", cmd.CommandPath(), strings.Join(names, " "), len(names), len(args))
		}
		return nil
	}
}

// client is the API client for a command: the gateway and token from the flags and config.
func (a *app) client() (*client, error) {
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	gw, err := a.gatewayURL(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		return nil, inputf("not logged in: run waooaw login (config %s)", a.configFile())
	}
	return &client{base: gw, token: cfg.Token, http: &http.Client{Timeout: a.timeout}}, nil
}

// markRequired marks flags required; a name that is not a flag is a programming error.
func markRequired(c *cobra.Command, names ...string) {
	for _, n := range names {
		if err := c.MarkFlagRequired(n); err != nil {
			panic(err)
		}
	}
}
