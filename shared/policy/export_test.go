package policy

import (
	"context"
)

// What the external tests and benchmarks of this package reach that
// callers do not.

var WithClock = withClock

func (e *Engine) Revision() string { return e.revisionName() }

func (e *Engine) DecideInput(ctx context.Context, bundle, rule string, in *Input, meta Meta) (Decision, error) {
	return e.decideInput(ctx, bundle, rule, in, meta)
}

func (in *Input) Set(input any) error { return in.set(input) }
