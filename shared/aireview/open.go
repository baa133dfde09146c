package aireview

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/secrets"
)

// watchStart bounds the wait for the budget listener's first snapshot at startup.
const watchStart = 30 * time.Second

// Open builds the AI router a reviewing function holds (ai.FromEnv): its keys read from src
// at each review, its spend kept in fs and published through pub, and the budget state kept
// by a listener on budget/platform, so a suspended or halted platform asks nothing. With no
// provider base URL in env it starts nothing and returns a nil Asker: a nil *ai.Router in
// the interface would look configured. stop ends the listener; it is never nil.
//
// Keys are read uncached: reviews are a few per agent creation, and a key removed (or
// added) takes effect at the next review rather than after a cache's lifetime.
func Open(ctx context.Context, env *config.Env, src secrets.Source, fs *firestore.Client, pub events.Publisher, onErr func(error)) (asker ai.Asker, stop func(), err error) {
	stop = func() {}
	var watch *budget.Watch
	r, err := ai.FromEnv(env, src, fs, pub, ai.WithBudgetState(func(ctx context.Context) (string, error) {
		return watch.Current(ctx)
	}))
	if err != nil {
		return nil, stop, fmt.Errorf("aireview: %w", err)
	}
	if r == nil {
		return nil, stop, nil
	}
	wctx, cancel := context.WithTimeout(ctx, watchStart)
	defer cancel()
	// Started only once a router exists: watch is set before anything can ask r.
	watch, err = budget.StartWatch(wctx, fs, nil, onErr)
	if err != nil {
		return nil, stop, fmt.Errorf("aireview: %w", err)
	}
	return r, watch.Stop, nil
}
