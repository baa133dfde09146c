package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/policy"
)

// Watch keeps the policy engine's data equal to the Firestore collections the policies
// read: data.platform.engagements (each engagement's Governor, for the governor policy),
// data.platform.client_engagements (each webhook client's engagements, for data_scope)
// and data.platform.budget_state (the budget guard's budget/platform, for budget). A snapshot listener per collection puts the whole map on every change, so a
// change made by an admin is enforced as soon as Firestore tells (well within a second
// locally), with no redeploy.
type Watch struct {
	stops []func()
	// Budget keeps data.platform.budget_state equal to budget/platform (shared/budget).
	Budget *budget.Watch

	mu      sync.Mutex
	clients map[string][]string // client id -> engagements, as last put in the engine
	changed chan struct{}       // closed and replaced at every put of clients
}

// StartWatch starts the listeners. It returns once each first snapshot is in the engine,
// so no decision is made on an empty map after a cold start, or with ctx's error if that
// takes longer than ctx allows. A broken listen is reported to onErr and started again.
func StartWatch(ctx context.Context, fs *firestore.Client, engine *policy.Engine, onErr func(error)) (*Watch, error) {
	w := &Watch{clients: map[string][]string{}, changed: make(chan struct{})}
	for _, l := range []struct {
		collection string
		apply      func(ctx context.Context, docs []*firestore.DocumentSnapshot) error
	}{
		{Engagements, func(ctx context.Context, docs []*firestore.DocumentSnapshot) error {
			return engine.PutData(ctx, "engagements", governors(docs))
		}},
		{EngagementClients, func(ctx context.Context, docs []*firestore.DocumentSnapshot) error {
			all := clientEngagements(docs)
			if err := engine.PutData(ctx, "client_engagements", all); err != nil {
				return err
			}
			w.mu.Lock()
			w.clients = all
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
			return nil
		}},
	} {
		stop, err := listen(ctx, fs, l.collection, l.apply, onErr)
		if err != nil {
			w.Stop()
			return nil, err
		}
		w.stops = append(w.stops, stop)
	}
	bw, err := budget.StartWatch(ctx, fs, engine, onErr)
	if err != nil {
		w.Stop()
		return nil, fmt.Errorf("gateway: %w", err)
	}
	w.Budget = bw
	w.stops = append(w.stops, bw.Stop)
	return w, nil
}

// Stop ends the listeners and waits for them.
func (w *Watch) Stop() {
	for _, stop := range w.stops {
		stop()
	}
}

// WatchEngagements is StartWatch for callers that only stop it.
func WatchEngagements(ctx context.Context, fs *firestore.Client, engine *policy.Engine, onErr func(error)) (stop func(), err error) {
	w, err := StartWatch(ctx, fs, engine, onErr)
	if err != nil {
		return nil, err
	}
	return w.Stop, nil
}

// WaitBinding returns once the engine's data says whether client is bound to engagement as
// bound says, so that an answer to an admin's change means this instance enforces it.
func (w *Watch) WaitBinding(ctx context.Context, client, engagement string, bound bool) error {
	for {
		w.mu.Lock()
		now, changed := slices.Contains(w.clients[client], engagement), w.changed
		w.mu.Unlock()
		if now == bound {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("gateway: binding of %s to %s not yet seen by the listener: %w", client, engagement, ctx.Err())
		}
	}
}

// governors folds engagements documents into data.platform.engagements.
func governors(docs []*firestore.DocumentSnapshot) map[string]any {
	all := map[string]any{}
	for _, doc := range docs {
		var e engagement
		if err := doc.DataTo(&e); err != nil || e.Governor == "" {
			continue // not an assignment: it grants nobody anything
		}
		all[doc.Ref.ID] = map[string]any{"governor": e.Governor}
	}
	return all
}

// clientEngagements folds engagement_clients documents into data.platform.client_engagements.
func clientEngagements(docs []*firestore.DocumentSnapshot) map[string][]string {
	all := map[string][]string{}
	for _, doc := range docs {
		var b clientBinding
		if err := doc.DataTo(&b); err != nil || !b.Bound || b.ClientID == "" || b.EngagementID == "" {
			continue // not a binding: it grants nobody anything
		}
		all[b.ClientID] = append(all[b.ClientID], b.EngagementID)
	}
	for _, e := range all {
		slices.Sort(e)
	}
	return all
}

// listen runs a snapshot listener on collection, handing apply every snapshot's documents,
// and restarts it with backoff when it breaks. It returns once the first apply succeeded.
func listen(ctx context.Context, fs *firestore.Client, collection string, apply func(context.Context, []*firestore.DocumentSnapshot) error, onErr func(error)) (stop func(), err error) {
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ready := make(chan struct{})
	var readyOnce sync.Once
	stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		backoff := 100 * time.Millisecond
		for wctx.Err() == nil {
			err := listenOnce(wctx, fs, collection, apply, func() {
				backoff = 100 * time.Millisecond
				readyOnce.Do(func() { close(ready) })
			})
			if wctx.Err() != nil {
				return
			}
			onErr(fmt.Errorf("gateway: %s listener: %w", collection, err))
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
		return stop, nil
	case <-ctx.Done():
		stop()
		return nil, fmt.Errorf("gateway: %s listener: no first snapshot: %w", collection, ctx.Err())
	}
}

func listenOnce(ctx context.Context, fs *firestore.Client, collection string, apply func(context.Context, []*firestore.DocumentSnapshot) error, healthy func()) error {
	it := fs.Collection(collection).Snapshots(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if err != nil {
			return err
		}
		var docs []*firestore.DocumentSnapshot
		for {
			doc, err := snap.Documents.Next()
			if errors.Is(err, errDone) {
				break
			}
			if err != nil {
				return err
			}
			docs = append(docs, doc)
		}
		if err := apply(ctx, docs); err != nil {
			return err
		}
		healthy()
	}
}
