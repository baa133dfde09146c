// Package shutdown runs a function's last work when its instance is stopped: Cloud
// Functions (Cloud Run) sends SIGTERM and kills the process 10 seconds later, so what is
// queued (attestations, batched publishes) is flushed in between.
package shutdown

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Grace is the time the flush gets: less than the platform's 10 s before SIGKILL.
const Grace = 8 * time.Second

// OnSIGTERM calls each fn once SIGTERM arrives (in order, sharing one Grace deadline), logs
// what failed, then lets the signal end the process as if it had not been caught.
func OnSIGTERM(log *slog.Logger, fns ...func(context.Context) error) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	go func() {
		<-ch
		if err := Run(context.Background(), fns...); err != nil {
			log.Error("shutdown: flush failed", "error", err.Error())
		}
		signal.Reset(syscall.SIGTERM)
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}

// Run calls each fn within Grace and joins their errors.
func Run(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, Grace)
	defer cancel()
	var errs []error
	for _, fn := range fns {
		errs = append(errs, fn(ctx))
	}
	return errors.Join(errs...)
}
