package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/events"
)

// ReplayCollection holds one document per accepted signed webhook, keyed by its replay key,
// so the same request is accepted once across all gateway instances. Documents carry
// expire_at for a Firestore TTL policy: after it the request's timestamp is long stale.
const ReplayCollection = "webhook_replays"

// Ledger states. A record is created pending with the events to publish; done once they
// are published. A failed publish leaves it failed (with what did go out), and an owner that
// died leaves it pending past its lease: either way a retry of the same request takes it
// over and publishes the same events, with the same event ids.
const (
	statePending = "pending"
	stateFailed  = "failed"
	stateDone    = "done"
)

// lease is how long an owner has to publish before a retry may take over.
const lease = 30 * time.Second

// What begin can refuse. The webhook handler turns them into answers.
var (
	// errInProgress: a twin of the request holds the lease right now.
	errInProgress = errors.New("ledger: same request in progress")
	// errOtherKind: the signed request was accepted before on another route.
	errOtherKind = errors.New("ledger: signed request already used")
	// errUnavailable: the replay store could not be read or written.
	errUnavailable = errors.New("ledger: replay store unavailable")
)

// kindError is errOtherKind naming the route that accepted the request first.
type kindError struct{ kind string }

func (e *kindError) Error() string { return fmt.Sprintf("%v for a %s webhook", errOtherKind, e.kind) }
func (e *kindError) Unwrap() error { return errOtherKind }

// replayRetention is how long after its timestamp a record is kept.
const replayRetention = time.Hour

type ledgerMessage struct {
	Topic     string          `firestore:"topic"`
	Envelope  string          `firestore:"envelope"` // JSON, exactly what is published
	Published bool            `firestore:"published"`
	env       events.Envelope // decoded Envelope
}

type ledgerRecord struct {
	Client     string          `firestore:"client"`
	Kind       string          `firestore:"kind"`
	EventID    string          `firestore:"event_id"`
	State      string          `firestore:"state"`
	Messages   []ledgerMessage `firestore:"messages,omitempty"`
	LeaseUntil time.Time       `firestore:"lease_until"`
	ExpireAt   time.Time       `firestore:"expire_at"`
	UpdatedAt  time.Time       `firestore:"updated_at"`
}

type ledger struct {
	fs  *firestore.Client
	now func() time.Time
}

// claim is the outcome of begin: done (answer with rec.EventID, publish nothing), or owned
// (publish rec.Messages that are not yet published), possibly taken over from a failed try.
type claim struct {
	ref      *firestore.DocumentRef
	rec      ledgerRecord
	done     bool
	takeover bool
}

// begin records a new request, or finds the record of an earlier one with the same key.
func (l *ledger) begin(ctx context.Context, key string, signedAt time.Time, rec ledgerRecord) (*claim, error) {
	now := l.now()
	rec.State, rec.LeaseUntil, rec.UpdatedAt = statePending, now.Add(lease), now
	rec.ExpireAt = signedAt.Add(replayRetention)
	for i := range rec.Messages {
		b, err := json.Marshal(rec.Messages[i].env)
		if err != nil {
			return nil, fmt.Errorf("ledger: marshal %s: %w", rec.Messages[i].Topic, err)
		}
		rec.Messages[i].Envelope = string(b)
	}
	ref := l.fs.Collection(ReplayCollection).Doc(key)
	_, err := ref.Create(ctx, rec)
	if err == nil {
		return &claim{ref: ref, rec: rec}, nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return nil, fmt.Errorf("%w: create %s: %w", errUnavailable, key, err)
	}

	var c *claim
	err = l.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		c = nil
		snap, err := tx.Get(ref)
		if err != nil {
			return fmt.Errorf("get: %w", err)
		}
		var old ledgerRecord
		if err := snap.DataTo(&old); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		now := l.now()
		switch {
		case old.Kind != rec.Kind:
			return &kindError{kind: old.Kind}
		case old.State == stateDone:
			c = &claim{ref: ref, rec: old, done: true}
			return nil
		case old.State == statePending && now.Before(old.LeaseUntil):
			return errInProgress
		}
		for i := range old.Messages {
			if err := json.Unmarshal([]byte(old.Messages[i].Envelope), &old.Messages[i].env); err != nil {
				return fmt.Errorf("decode message %d: %w", i, err)
			}
		}
		old.State, old.LeaseUntil, old.UpdatedAt = statePending, now.Add(lease), now
		c = &claim{ref: ref, rec: old, takeover: true}
		return tx.Update(ref, []firestore.Update{
			{Path: "state", Value: statePending},
			{Path: "lease_until", Value: old.LeaseUntil},
			{Path: "updated_at", Value: now},
		})
	})
	if err != nil && !errors.Is(err, errInProgress) && !errors.Is(err, errOtherKind) {
		return nil, fmt.Errorf("%w: claim %s: %w", errUnavailable, key, err)
	}
	return c, err
}

// beginOrWait is begin, except that while a twin of the request holds the lease it polls
// for up to wait, so a retry sent while the first is publishing still gets its event id.
func (l *ledger) beginOrWait(ctx context.Context, key string, signedAt time.Time, rec ledgerRecord, wait time.Duration) (*claim, error) {
	deadline := time.Now().Add(wait)
	for {
		c, err := l.begin(ctx, key, signedAt, rec)
		if !errors.Is(err, errInProgress) || time.Now().After(deadline) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// finish marks the request done and drops the stored events, which are no longer needed.
func (l *ledger) finish(ctx context.Context, c *claim) error {
	_, err := c.ref.Update(ctx, []firestore.Update{
		{Path: "state", Value: stateDone},
		{Path: "messages", Value: firestore.Delete},
		{Path: "updated_at", Value: l.now()},
	})
	if err != nil {
		return fmt.Errorf("ledger: finish %s: %w", c.ref.ID, err)
	}
	return nil
}

// fail records which messages went out and frees the record for a retry at once.
func (l *ledger) fail(ctx context.Context, c *claim, msgs []ledgerMessage) error {
	now := l.now()
	_, err := c.ref.Update(ctx, []firestore.Update{
		{Path: "state", Value: stateFailed},
		{Path: "messages", Value: msgs},
		{Path: "lease_until", Value: now},
		{Path: "updated_at", Value: now},
	})
	if err != nil {
		return fmt.Errorf("ledger: fail %s: %w", c.ref.ID, err)
	}
	return nil
}
