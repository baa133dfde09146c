package budget

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
)

// DataPutter takes data.platform[key] (*policy.Engine).
type DataPutter interface {
	PutData(ctx context.Context, key string, value any) error
}

// Watch keeps a policy engine's data.platform.budget_state equal to budget/platform with a
// Firestore snapshot listener: a transition the budget guard commits is enforced as soon
// as Firestore tells, with no poll and no redeploy.
type Watch struct {
	stop func()

	mu      sync.Mutex
	cur     State
	changed chan struct{} // closed and replaced at every put
	stopped bool
}

// StartWatch starts the listener and returns once the first snapshot is in put, so no
// decision is made without the budget state after a cold start, or with ctx's error if that
// takes longer than ctx allows. A broken listen is reported to onErr and started again with
// backoff. put may be nil for a caller that only reads State.
func StartWatch(ctx context.Context, fs *firestore.Client, put DataPutter, onErr func(error)) (*Watch, error) {
	w := &Watch{changed: make(chan struct{})}
	if onErr == nil {
		onErr = func(error) {}
	}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	var readyOnce sync.Once
	w.stop = func() {
		cancel()
		<-done
		w.mu.Lock()
		if !w.stopped {
			w.stopped = true
			close(w.changed)
		}
		w.mu.Unlock()
	}
	apply := func(s State) error {
		if put != nil {
			if err := put.PutData(wctx, DataKey, s.PolicyData()); err != nil {
				return err
			}
		}
		w.mu.Lock()
		w.cur = s
		close(w.changed)
		w.changed = make(chan struct{})
		w.mu.Unlock()
		readyOnce.Do(func() { close(ready) })
		return nil
	}
	go func() {
		defer close(done)
		backoff := 100 * time.Millisecond
		for wctx.Err() == nil {
			err := listenOnce(wctx, fs, func(s State) error {
				backoff = 100 * time.Millisecond
				return apply(s)
			})
			if wctx.Err() != nil {
				return
			}
			onErr(fmt.Errorf("budget: %s/%s listener: %w", Collection, Platform, err))
			select {
			case <-wctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
	select {
	case <-ready:
		return w, nil
	case <-ctx.Done():
		w.stop()
		return nil, fmt.Errorf("budget: %s/%s listener: no first snapshot: %w", Collection, Platform, ctx.Err())
	}
}

func listenOnce(ctx context.Context, fs *firestore.Client, apply func(State) error) error {
	it := Ref(fs).Snapshots(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err != nil {
			return err
		}
		s, err := decode(snap, nil)
		if err != nil {
			return err
		}
		if err := apply(s); err != nil {
			return err
		}
	}
}

// Stop ends the listener and waits for it.
func (w *Watch) Stop() { w.stop() }

// State is the state as last seen.
func (w *Watch) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// Current is the state's name as last seen, in the shape the AI router asks it.
func (w *Watch) Current(context.Context) (string, error) { return w.State().Current(), nil }

// Wait returns once the state seen is state, or with ctx's error.
func (w *Watch) Wait(ctx context.Context, state string) error {
	for {
		w.mu.Lock()
		now, changed, stopped := w.cur.Current(), w.changed, w.stopped
		w.mu.Unlock()
		if now == state {
			return nil
		}
		if stopped {
			return ErrStopped
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("budget: state %s not yet seen (now %s): %w", state, now, ctx.Err())
		}
	}
}
