// Package startup is the one way a function of the platform starts. A function's package
// registers itself in init() with HTTP or CloudEvent and an open func that builds its
// handler from the environment; this package does the rest, the same way for every
// function:
//
//   - the handler is built once per instance, on the first request, or at once in the
//     background when FUNCTION_TARGET names the function, so a cold start connects while the
//     framework starts listening;
//   - a build that fails is not kept: the request is refused (HTTP 503, or an error that
//     Pub/Sub retries) and the next request builds again, so a transient error at start
//     (a client that could not connect, a variable not yet mounted) never bricks an instance;
//   - an error marked Permanent (a policy that does not compile) stops the process, logged
//     at CRITICAL with its cause (file:line for a policy), since no retry can fix it;
//   - variables are read through shared/config, every missing or malformed one reported at
//     once; logs go to stdout in Cloud Logging's JSON (shared/logging);
//   - what open registers with Env.OnShutdown runs on SIGTERM (shared/shutdown), last
//     registered first, like deferred calls.
package startup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/shutdown"
)

// EnvProject is the variable naming the Google Cloud project (the emulators' project locally).
const EnvProject = "GOOGLE_CLOUD_PROJECT"

// Env is what open gets: the environment to read variables from, the function's logger,
// and a place to register what must be closed at shutdown.
type Env struct {
	*config.Env
	// Name is the registered entry point ("Gateway").
	Name string
	// Project is GOOGLE_CLOUD_PROJECT, "" when unset (open requires it when it needs it).
	Project string
	// Log writes Cloud Logging JSON lines to stdout.
	Log *slog.Logger

	closers []func(context.Context) error
}

// OnShutdown registers fn to run when the instance is stopped; fns run last registered
// first, so a queue flushes before the client under it closes.
func (e *Env) OnShutdown(fn func(context.Context) error) { e.closers = append(e.closers, fn) }

// close runs the registered fns in reverse order.
func (e *Env) close(ctx context.Context) error {
	var errs []error
	for _, fn := range slices.Backward(e.closers) {
		errs = append(errs, fn(ctx))
	}
	return errors.Join(errs...)
}

// permanentError marks an error that no retry of open can fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks err as one that no retry can fix: when open returns it, the instance
// stops instead of trying again on the next request.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// exit stops the process after a permanent error, and stdout takes the logs: variables so
// that tests can see both.
var (
	exit             = os.Exit
	stdout io.Writer = os.Stdout
)

// instance builds a function's handler once and keeps it; a failed build is retried by the
// next caller.
type instance[H any] struct {
	name string
	open func(context.Context, *Env) (H, error)

	built    atomic.Pointer[H]
	mu       sync.Mutex
	prepared atomic.Bool
}

func newInstance[H any](name string, open func(context.Context, *Env) (H, error)) *instance[H] {
	return &instance[H]{name: name, open: open}
}

// get returns the handler, building it first if no build has succeeded yet. It stops the
// process when open returns a Permanent error.
func (in *instance[H]) get(ctx context.Context) (H, error) {
	if h := in.built.Load(); h != nil {
		return *h, nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if h := in.built.Load(); h != nil {
		return *h, nil
	}
	h, env, err := in.build(context.WithoutCancel(ctx))
	if err != nil {
		env.Log.Log(ctx, severity(err), in.name+": start failed", "error", err.Error())
		if IsPermanent(err) {
			exit(1)
		}
		return h, err
	}
	shutdown.OnSIGTERM(env.Log, env.close)
	in.built.Store(&h)
	return h, nil
}

func severity(err error) slog.Level {
	if IsPermanent(err) {
		return logging.LevelCritical
	}
	return slog.LevelError
}

// build runs open once. The clients it makes outlive the request that triggered it, so ctx
// carries no cancellation; what open registered is closed again when it fails.
func (in *instance[H]) build(ctx context.Context) (H, *Env, error) {
	project := os.Getenv(EnvProject)
	env := &Env{
		Env:     config.FromOS(),
		Name:    in.name,
		Project: project,
		Log:     logging.New(stdout, &logging.Options{Project: project}),
	}
	h, err := in.open(ctx, env)
	if err == nil {
		// open may have read every variable and still have a problem to report: a
		// configuration error names all of them at once.
		err = env.Err()
	}
	if err != nil {
		var zero H
		if cerr := env.close(ctx); cerr != nil {
			env.Log.Warn(in.name+": closing after a failed start", "error", cerr.Error())
		}
		return zero, env, fmt.Errorf("%s: %w", in.name, err)
	}
	return h, env, nil
}

// registered maps each entry point to its instance's prepare, for Main.
var registered sync.Map // name -> func()

// prepare builds in the background when this process serves name (FUNCTION_TARGET), so
// requests that arrive meanwhile wait for the build instead of paying for it alone.
func (in *instance[H]) prepare() {
	if os.Getenv("FUNCTION_TARGET") != in.name || in.prepared.Swap(true) {
		return
	}
	go func() { _, _ = in.get(context.Background()) }() // Get logs a failure; a request retries it
}

// HTTP registers an HTTP function and returns its entry point. open builds its handler
// (see the package comment).
func HTTP(name string, open func(context.Context, *Env) (http.Handler, error)) http.HandlerFunc {
	in := newInstance(name, open)
	entry := func(w http.ResponseWriter, r *http.Request) {
		h, err := in.get(r.Context())
		if err != nil {
			Unavailable(w, name+" is not configured; see its log")
			return
		}
		h.ServeHTTP(w, r)
	}
	functions.HTTP(name, entry)
	registered.Store(name, in.prepare)
	in.prepare()
	return entry
}

// EventHandler handles one CloudEvent (a Pub/Sub push, as functions-framework-go delivers it).
type EventHandler = func(context.Context, event.Event) error

// CloudEvent registers a CloudEvent function. open builds its handler; while it cannot,
// each event fails, so Pub/Sub delivers it again.
func CloudEvent(name string, open func(context.Context, *Env) (EventHandler, error)) EventHandler {
	in := newInstance(name, open)
	entry := func(ctx context.Context, ce event.Event) error {
		h, err := in.get(ctx)
		if err != nil {
			return err
		}
		return h(ctx, ce)
	}
	functions.CloudEvent(name, entry)
	registered.Store(name, in.prepare)
	in.prepare()
	return entry
}

// Unavailable answers 503 with the platform's JSON error body; the caller may retry.
func Unavailable(w http.ResponseWriter, msg string) {
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = http.StatusServiceUnavailable, msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(body) // the client may be gone; nothing to do about it
}
