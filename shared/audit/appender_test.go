package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/store"
)

// auditEvent builds a schema-valid audit_events envelope for stream.
func auditEvent(t testing.TB, stream string, i int) events.Envelope {
	t.Helper()
	e, err := events.New("waooaw.audit.recorded", "//test/audit", "system:test", map[string]any{
		"stream": stream, "event_type": "decision", "actor_id": fmt.Sprintf("gov-%d", i%7),
		"actor_type": "human", "action": "approve", "target": fmt.Sprintf("agent-%d", i),
		"context":        map[string]string{"i": fmt.Sprint(i), "why": "test"},
		"approval_chain": []string{"genesis", "governor"}, "result": "approved",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Encode(events.TopicAuditEvents, e); err != nil {
		t.Fatalf("test event breaks the schema: %v", err)
	}
	return e
}

func entriesOf(t testing.TB, c *firestore.Client, stream string) []Entry {
	t.Helper()
	docs, err := c.Collection(store.AuditStreams).Doc(stream).Collection(store.AuditEntries).Documents(context.Background()).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Entry, len(docs))
	for i, d := range docs {
		if err := d.DataTo(&out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestAppendConcurrentWithDuplicates(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()

	streams := []string{"eng-a", "eng-b", "platform"}
	var evs []events.Envelope
	for i := range 240 {
		evs = append(evs, auditEvent(t, streams[i%len(streams)], i))
	}
	deliveries := append([]events.Envelope(nil), evs...)
	for i := 0; i < len(evs); i += 10 {
		deliveries = append(deliveries, evs[i]) // 10% delivered twice
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	var mu sync.Mutex
	seqOf := map[string]int64{}
	var dups atomic.Int64
	var wg sync.WaitGroup
	for _, e := range deliveries {
		wg.Go(func() {
			r, err := app.Append(ctx, e)
			if err != nil {
				t.Errorf("append %s: %v", e.EventID, err)
				return
			}
			if r.Duplicate {
				dups.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := seqOf[e.EventID]; ok && prev != r.Seq {
				t.Errorf("event %s got seq %d and %d", e.EventID, prev, r.Seq)
			}
			seqOf[e.EventID] = r.Seq
		})
	}
	wg.Wait()
	if got, want := dups.Load(), int64(len(deliveries)-len(evs)); got != want {
		t.Errorf("%d appends reported duplicate, want %d", got, want)
	}
	// A redelivery after the fact is a duplicate too, with the same seq.
	r, err := app.Append(ctx, evs[5])
	if err != nil || !r.Duplicate || r.Seq != seqOf[evs[5].EventID] {
		t.Errorf("late redelivery: %+v, %v; want duplicate of seq %d", r, err, seqOf[evs[5].EventID])
	}

	for _, s := range streams {
		es := entriesOf(t, client, s)
		if len(es) != len(evs)/len(streams) {
			t.Errorf("%s: %d entries, want %d", s, len(es), len(evs)/len(streams))
		}
		for i, e := range es {
			if e.Seq != int64(i+1) {
				t.Fatalf("%s: entry %d has seq %d", s, i, e.Seq)
			}
			if seqOf[e.EventID] != e.Seq {
				t.Errorf("%s: event %s stored at %d, append said %d", s, e.EventID, e.Seq, seqOf[e.EventID])
			}
		}
		rep, err := Verify(ctx, client, s)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries != len(es) || rep.FirstBadSeq != nil || rep.HeadHash != es[len(es)-1].Hash {
			t.Errorf("%s: verify = %+v", s, rep)
		}
	}
}

// Two processes (two function instances) appending to the same stream: the transaction on
// the head keeps one chain, whoever wins each round. An append that loses too many rounds
// fails and is retried, as Pub/Sub would redeliver it.
func TestTwoAppendersShareAStream(t *testing.T) {
	env := emulators.ForTest(t)
	ctx := context.Background()
	apps := []*Appender{NewAppender(env.Firestore(t)), NewAppender(env.Firestore(t))}
	client := env.Firestore(t)
	var evs []events.Envelope
	for i := range 100 {
		evs = append(evs, auditEvent(t, "shared", i))
	}
	var wg sync.WaitGroup
	var retries atomic.Int64
	for i, e := range evs {
		for k, app := range apps {
			if k == 1 && i%4 != 0 {
				continue // a quarter of the events reach both instances
			}
			wg.Go(func() {
				for attempt := 1; ; attempt++ {
					_, err := app.Append(ctx, e)
					if err == nil {
						return
					}
					if attempt == 10 {
						t.Errorf("append %s: %v", e.EventID, err)
						return
					}
					retries.Add(1)
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d appends retried after losing to the other instance", retries.Load())
	rep, err := Verify(ctx, client, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Entries != len(evs) {
		t.Fatalf("verify %+v, want ok with %d entries", rep, len(evs))
	}
}

// Verify reads one snapshot, so appends running meanwhile never look like damage.
func TestVerifyDuringAppends(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()
	if _, err := app.Append(ctx, auditEvent(t, "busy", 0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := 1; i < 150; i++ {
			wg.Go(func() {
				if _, err := app.Append(ctx, auditEvent(t, "busy", i)); err != nil {
					t.Errorf("append: %v", err)
				}
			})
		}
		wg.Wait()
	}()
	last, runs := 0, 0
	for running := true; running; runs++ {
		select {
		case <-done:
			running = false
		default:
		}
		rep, err := Verify(ctx, client, "busy")
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries < last {
			bad := int64(-1)
			if rep.FirstBadSeq != nil {
				bad = *rep.FirstBadSeq
			}
			t.Fatalf("verify during appends: %+v, first bad seq %d (previous run saw %d entries)", rep, bad, last)
		}
		last = rep.Entries
	}
	if last != 150 {
		t.Fatalf("final verify saw %d entries, want 150 (%d runs)", last, runs)
	}
	t.Logf("%d verifications ran while appending", runs)
}

func TestAppendRefusesInvalid(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	tests := []struct {
		name   string
		mutate func(*events.Envelope)
	}{
		{"no event id", func(e *events.Envelope) { e.EventID = "" }},
		{"slash in stream", func(e *events.Envelope) {
			e.Data = json.RawMessage(`{"stream":"a/b","event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`)
		}},
		{"data not an object", func(e *events.Envelope) { e.Data = json.RawMessage(`[1]`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := auditEvent(t, "invalid", 1)
			tt.mutate(&e)
			if _, err := app.Append(context.Background(), e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := Verify(context.Background(), client, "invalid"); !errors.Is(err, ErrUnknownStream) {
		t.Fatalf("stream written by invalid events: verify err = %v", err)
	}
}

// Each case damages a 10-entry stream directly in Firestore, as someone bypassing the
// appender would, and expects Verify to name the exact first bad seq.
func TestVerifyFindsTampering(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()
	p := func(n int64) *int64 { return &n }

	tests := []struct {
		name    string
		tamper  func(t *testing.T, stream *firestore.DocumentRef)
		wantBad *int64
	}{
		{"untouched", func(*testing.T, *firestore.DocumentRef) {}, nil},
		{"result altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, s.Collection(store.AuditEntries).Doc(seqID(4)), "result", "denied")
		}, p(4)},
		{"context altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, s.Collection(store.AuditEntries).Doc(seqID(7)), "context.why", "other")
		}, p(7)},
		{"entry deleted", func(t *testing.T, s *firestore.DocumentRef) {
			if _, err := s.Collection(store.AuditEntries).Doc(seqID(6)).Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}, p(6)},
		{"seq field altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, s.Collection(store.AuditEntries).Doc(seqID(2)), "seq", int64(3))
		}, p(2)},
		{"last entry rewritten with a consistent hash", func(t *testing.T, s *firestore.DocumentRef) {
			ref := s.Collection(store.AuditEntries).Doc(seqID(10))
			snap, err := ref.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var e Entry
			if err := snap.DataTo(&e); err != nil {
				t.Fatal(err)
			}
			e.Result = "denied"
			if e.Hash, err = ChainHash(e.PrevHash, e); err != nil {
				t.Fatal(err)
			}
			if _, err := ref.Set(ctx, e); err != nil {
				t.Fatal(err)
			}
		}, p(10)},
		{"head moved back", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, s, "seq", int64(8))
		}, p(9)},
		{"field type changed", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, s.Collection(store.AuditEntries).Doc(seqID(5)), "seq", "five")
		}, p(5)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := fmt.Sprintf("tamper-%d", i)
			for j := range 10 {
				if _, err := app.Append(ctx, auditEvent(t, stream, j)); err != nil {
					t.Fatal(err)
				}
			}
			tt.tamper(t, client.Collection(store.AuditStreams).Doc(stream))
			rep, err := Verify(ctx, client, stream)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantBad == nil {
				if !rep.OK || rep.FirstBadSeq != nil || rep.Entries != 10 {
					t.Fatalf("report %+v, want ok with 10 entries", rep)
				}
				return
			}
			if rep.OK || rep.FirstBadSeq == nil || *rep.FirstBadSeq != *tt.wantBad {
				t.Fatalf("report ok=%v first_bad_seq=%v, want %d", rep.OK, deref(rep.FirstBadSeq), *tt.wantBad)
			}
			if rep.Entries != int(*tt.wantBad-1) {
				t.Errorf("entries = %d, want %d verified before the break", rep.Entries, *tt.wantBad-1)
			}
		})
	}
}

// An event id the stream already holds is a redelivery only with the same content;
// with any other content the event is refused as a conflict and nothing is written.
func TestAppendRefusesReusedID(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()
	otherData := func(t *testing.T, e *events.Envelope) {
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			t.Fatal(err)
		}
		m["result"] = "denied"
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		e.Data = b
	}
	tests := []struct {
		name string
		// legacy removes the content hash from the first delivery's index document, as
		// documents written before it was recorded lack it.
		legacy   bool
		mutate   func(*testing.T, *events.Envelope)
		conflict bool
	}{
		{"same content", false, func(*testing.T, *events.Envelope) {}, false},
		{"other data", false, otherData, true},
		{"other time", false, func(_ *testing.T, e *events.Envelope) { e.Time = "2030-01-01T00:00:00Z" }, true},
		{"envelope fields outside the entry", false, func(_ *testing.T, e *events.Envelope) { e.CorrelationID = "other" }, false},
		{"older index document, same content", true, func(*testing.T, *events.Envelope) {}, false},
		{"older index document, other data", true, otherData, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := fmt.Sprintf("reuse-%d", i)
			for j := range 3 {
				if _, err := app.Append(ctx, auditEvent(t, stream, j)); err != nil {
					t.Fatal(err)
				}
			}
			orig := auditEvent(t, stream, 3)
			first, err := app.Append(ctx, orig)
			if err != nil {
				t.Fatal(err)
			}
			if tt.legacy {
				ref := client.Collection(store.AuditStreams).Doc(stream).Collection(store.AuditEventIndex).Doc(indexID(orig.EventID))
				update(t, ref, "content", firestore.Delete)
			}
			before := entriesOf(t, client, stream)
			again := orig
			tt.mutate(t, &again)

			r, err := app.Append(ctx, again)
			if !tt.conflict {
				if err != nil || !r.Duplicate || r.Seq != first.Seq || r.Hash != first.Hash {
					t.Fatalf("append = %+v, %v; want a duplicate of %+v", r, err, first)
				}
			} else {
				var ce *ConflictError
				if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("append = %+v, %v; want a *ConflictError wrapping ErrConflict and ErrInvalid", r, err)
				}
				_, oe, _ := FromEnvelope(orig)
				_, ae, _ := FromEnvelope(again)
				want := &ConflictError{Stream: stream, EventID: orig.EventID, Seq: first.Seq,
					Stored: mustContent(t, oe), Got: mustContent(t, ae)}
				if *ce != *want || ce.Stored == ce.Got {
					t.Errorf("conflict = %+v, want %+v", ce, want)
				}
			}
			after := entriesOf(t, client, stream)
			if len(after) != len(before) || after[len(after)-1].Hash != before[len(before)-1].Hash ||
				after[first.Seq-1].Result != before[first.Seq-1].Result {
				t.Errorf("entries changed: %d -> %d", len(before), len(after))
			}
			rep, err := Verify(ctx, client, stream)
			if err != nil || !rep.OK || rep.Entries != 4 {
				t.Errorf("verify = %+v, %v; want ok with 4 entries", rep, err)
			}
		})
	}
}

// Two deliveries with one id and different content racing each other, in one batch or in
// two: exactly one is appended, the other is refused.
func TestAppendConflictInOneBatch(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()
	for round := range 5 {
		stream := fmt.Sprintf("race-%d", round)
		a := auditEvent(t, stream, 1)
		b := a
		b.Time = "2030-01-01T00:00:00Z"
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i, e := range []events.Envelope{a, b, a, b} {
			wg.Go(func() { _, errs[i] = app.Append(ctx, e) })
		}
		wg.Wait()
		var ok, conflicts int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Fatalf("append: %v", err)
			}
		}
		if ok != 2 || conflicts != 2 {
			t.Errorf("round %d: %d appended or duplicate, %d conflicts; want 2 and 2", round, ok, conflicts)
		}
		if n := len(entriesOf(t, client, stream)); n != 1 {
			t.Errorf("round %d: %d entries, want 1", round, n)
		}
	}
}

func mustContent(t *testing.T, e Entry) string {
	t.Helper()
	c, err := ContentHash(e)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Each case damages the event-id index of a 10-entry stream directly in Firestore and
// expects Verify to name the first seq where index and entries disagree, the chain itself
// verifying.
func TestVerifyFindsIndexTampering(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	app := NewAppender(client)
	ctx := context.Background()
	p := func(n int64) *int64 { return &n }
	// doc returns the index document of the entry at seq.
	doc := func(t *testing.T, s *firestore.DocumentRef, seq int64) *firestore.DocumentRef {
		t.Helper()
		snap, err := s.Collection(store.AuditEntries).Doc(seqID(seq)).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, err := snap.DataAt("event_id")
		if err != nil {
			t.Fatal(err)
		}
		return s.Collection(store.AuditEventIndex).Doc(indexID(id.(string)))
	}
	create := func(t *testing.T, s *firestore.DocumentRef, d indexDoc) {
		t.Helper()
		if _, err := s.Collection(store.AuditEventIndex).Doc(indexID(d.EventID)).Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		tamper  func(t *testing.T, stream *firestore.DocumentRef)
		wantBad *int64
	}{
		{"untouched", func(*testing.T, *firestore.DocumentRef) {}, nil},
		{"content hash removed, as in older documents", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 3), "content", firestore.Delete)
		}, nil},
		{"index document deleted", func(t *testing.T, s *firestore.DocumentRef) {
			if _, err := doc(t, s, 4).Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}, p(4)},
		{"hash altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 6), "hash", GenesisHash)
		}, p(6)},
		{"content altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 5), "content", GenesisHash)
		}, p(5)},
		{"event id altered", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 2), "event_id", "someone-else")
		}, p(2)},
		{"seq moved to another entry", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 7), "seq", int64(9))
		}, p(7)},
		{"seq of the wrong type", func(t *testing.T, s *firestore.DocumentRef) {
			update(t, doc(t, s, 8), "seq", "eight")
		}, p(8)},
		{"forged document for an entry", func(t *testing.T, s *firestore.DocumentRef) {
			create(t, s, indexDoc{EventID: "forged", Seq: 3, Hash: GenesisHash})
		}, p(3)},
		{"forged document past the last entry", func(t *testing.T, s *firestore.DocumentRef) {
			create(t, s, indexDoc{EventID: "forged", Seq: 11, Hash: GenesisHash})
		}, p(11)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := fmt.Sprintf("index-tamper-%d", i)
			for j := range 10 {
				if _, err := app.Append(ctx, auditEvent(t, stream, j)); err != nil {
					t.Fatal(err)
				}
			}
			tt.tamper(t, client.Collection(store.AuditStreams).Doc(stream))
			rep, err := Verify(ctx, client, stream)
			if err != nil {
				t.Fatal(err)
			}
			if rep.FirstBadSeq != nil || rep.Entries != 10 {
				t.Errorf("chain: first_bad_seq %d, entries %d; want nil and 10", deref(rep.FirstBadSeq), rep.Entries)
			}
			if tt.wantBad == nil {
				if !rep.OK || rep.IndexBadSeq != nil {
					t.Fatalf("report %+v, want ok", rep)
				}
				return
			}
			if rep.OK || rep.IndexBadSeq == nil || *rep.IndexBadSeq != *tt.wantBad || rep.IndexProblem == "" {
				t.Fatalf("report ok=%v index_bad_seq=%d (%s), want %d", rep.OK, deref(rep.IndexBadSeq), rep.IndexProblem, *tt.wantBad)
			}
		})
	}
}

func update(t *testing.T, ref *firestore.DocumentRef, path string, v any) {
	t.Helper()
	if _, err := ref.Update(context.Background(), []firestore.Update{{Path: path, Value: v}}); err != nil {
		t.Fatalf("tamper %s: %v", ref.Path, err)
	}
}

// BenchmarkAppendEmulator measures sustained appends through the Firestore emulator: 64
// concurrent callers (as concurrent push deliveries would be) over 5 streams, with group
// commit (the default) and without it (one event per transaction) for comparison. The chain
// is verified afterwards, outside the timer.
func BenchmarkAppendEmulator(b *testing.B) {
	env := emulators.ForTest(b)
	client := env.Firestore(b)
	for _, bm := range []struct {
		name string
		opts []Option
	}{
		{"group_commit", nil},
		{"one_per_transaction", []Option{WithMaxBatch(1)}},
	} {
		b.Run(bm.name, func(b *testing.B) { benchAppend(b, client, NewAppender(client, bm.opts...)) })
	}
}

func benchAppend(b *testing.B, client *firestore.Client, app *Appender) {
	ctx := context.Background()
	var streams []string // fresh per run: the framework calls this function for several b.N
	for i := range 5 {
		streams = append(streams, fmt.Sprintf("bench-%d-s%d", time.Now().UnixNano(), i))
	}
	evs := make([]events.Envelope, b.N)
	for i := range evs {
		evs[i] = auditEvent(b, streams[i%len(streams)], i)
	}
	const workers = 64
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(evs)) {
					return
				}
				if _, err := app.Append(ctx, evs[i]); err != nil {
					b.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	total := 0
	for _, s := range streams {
		rep, err := Verify(ctx, client, s)
		if errors.Is(err, ErrUnknownStream) {
			continue // b.N below 5 leaves some streams empty
		}
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK {
			b.Fatalf("%s: chain broken: %+v", s, rep)
		}
		total += rep.Entries
	}
	if total != b.N {
		b.Fatalf("%d entries for %d events", total, b.N)
	}
}

// BenchmarkVerifyEmulator measures how fast Verify walks a stream in the Firestore emulator:
// one op is one entry verified (the stream of b.N entries is built outside the timer).
func BenchmarkVerifyEmulator(b *testing.B) {
	env := emulators.ForTest(b)
	client := env.Firestore(b)
	app := NewAppender(client)
	ctx := context.Background()
	stream := fmt.Sprintf("walk-%d", time.Now().UnixNano()) // fresh per b.N
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range b.N {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := app.Append(ctx, auditEvent(b, stream, i)); err != nil {
				b.Errorf("append: %v", err)
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	start := time.Now()
	rep, err := Verify(ctx, client, stream)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil || !rep.OK || rep.Entries != b.N {
		b.Fatalf("verify: %+v, %v", rep, err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "entries/s")
}
