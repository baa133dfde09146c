package gateway

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
)

// TestLedgerStates walks one replay record through the states a crashed, failed or
// concurrent owner leaves, on the Firestore emulator, with a clock the test moves.
func TestLedgerStates(t *testing.T) {
	env := emulators.ForTest(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := &ledger{fs: env.Firestore(t), now: func() time.Time { return now }}
	ctx := context.Background()
	ev, err := events.New("waooaw.health.reported", Source, "client:c", map[string]string{"agent_id": "a"})
	if err != nil {
		t.Fatal(err)
	}
	au, err := events.New(AuditEventType, Source, "client:c", map[string]string{"stream": "e"})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(kind string) ledgerRecord {
		return ledgerRecord{Client: "c", Kind: kind, EventID: ev.EventID, Messages: []ledgerMessage{
			{Topic: events.TopicHealthEvents, env: ev}, {Topic: events.TopicAuditEvents, env: au}}}
	}
	inProgress := func(err error) bool { return errors.Is(err, errInProgress) }

	first, err := l.begin(ctx, "k1", now, rec("health"))
	if err != nil || first.done || first.takeover {
		t.Fatalf("first begin: %+v, %v", first, err)
	}
	steps := []struct {
		name    string
		advance time.Duration
		before  func()
		kind    string
		check   func(c *claim, err error) bool
	}{
		{"owner still within its lease: in progress", 10 * time.Second, nil, "health",
			func(c *claim, err error) bool { return inProgress(err) }},
		{"same signature on another route: used for health", 0, nil, "slo",
			func(c *claim, err error) bool {
				var ke *kindError
				return errors.Is(err, errOtherKind) && errors.As(err, &ke) && ke.kind == "health"
			}},
		{"owner silent past its lease: taken over with the stored events", 25 * time.Second, nil, "health",
			func(c *claim, err error) bool {
				return err == nil && c.takeover && c.rec.EventID == ev.EventID && len(c.rec.Messages) == 2 &&
					c.rec.Messages[0].env.EventID == ev.EventID && c.rec.Messages[1].env.EventID == au.EventID
			}},
		{"the new owner holds a fresh lease", time.Second, nil, "health",
			func(c *claim, err error) bool { return inProgress(err) }},
		{"a failed publish frees it at once, keeping what went out", 0, func() {
			msgs := first.rec.Messages
			msgs[1].Published = true
			if err := l.fail(ctx, first, msgs); err != nil {
				t.Fatal(err)
			}
		}, "health", func(c *claim, err error) bool {
			return err == nil && c.takeover && !c.rec.Messages[0].Published && c.rec.Messages[1].Published
		}},
		{"done: the first event id, nothing to publish", 0, func() {
			if err := l.finish(ctx, first); err != nil {
				t.Fatal(err)
			}
		}, "health", func(c *claim, err error) bool {
			return err == nil && c.done && !c.takeover && c.rec.EventID == ev.EventID && len(c.rec.Messages) == 0
		}},
		{"still done after any time", time.Hour, nil, "health",
			func(c *claim, err error) bool { return err == nil && c.done }},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.before != nil {
			s.before()
		}
		c, err := l.begin(ctx, "k1", now, rec(s.kind))
		if !s.check(c, err) {
			t.Fatalf("%s: claim %+v, err %v", s.name, c, err)
		}
	}
	snap, err := l.fs.Collection(ReplayCollection).Doc("k1").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stored ledgerRecord
	if err := snap.DataTo(&stored); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC); !stored.ExpireAt.Equal(want) {
		t.Fatalf("expire_at = %v, want %v (signed time + %v)", stored.ExpireAt, want, replayRetention)
	}
}

// The handler, not the ledger, decides what a refusal means to the caller.
func TestLedgerErrorAnswers(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code int
		msg  string
	}{
		{&kindError{kind: "health"}, 409, "this signed request was already used for a health webhook"},
		{errInProgress, 409, "the same request is being processed; retry shortly"},
		{fmt.Errorf("%w: create k: %w", errUnavailable, errors.New("deadline exceeded")), 503, "replay store unavailable; retry"},
	} {
		got := ledgerError(tt.err)
		if got.code != tt.code || got.msg != tt.msg || !errors.Is(got, tt.err) {
			t.Errorf("ledgerError(%v) = %d %q (cause %v), want %d %q", tt.err, got.code, got.msg, got.cause, tt.code, tt.msg)
		}
	}
}

func TestLedgerStoreUnavailable(t *testing.T) {
	env := emulators.ForTest(t)
	fs := env.Firestore(t)
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	l := &ledger{fs: fs, now: time.Now}
	_, err := l.begin(context.Background(), "k-closed", time.Now(), ledgerRecord{Client: "c", Kind: "health", EventID: "e"})
	if !errors.Is(err, errUnavailable) {
		t.Fatalf("begin on a closed client: %v, want errUnavailable", err)
	}
}
