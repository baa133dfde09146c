package policy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
)

func atts(n int) []policy.Attestation {
	out := make([]policy.Attestation, n)
	for i := range out {
		out[i] = policy.Attestation{DecisionID: fmt.Sprintf("d-%d", i), CorrelationID: "c"}
	}
	return out
}

func ids(as []policy.Attestation) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.DecisionID
	}
	return strings.Join(s, ",")
}

func TestAttesterBatchesAndRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, batch int
		failures int
	}{
		{"one partial batch", 3, 10, 0},
		{"several full batches", 25, 5, 0},
		{"retried after failures", 12, 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := &policytest.MemorySink{FailNext: tc.failures}
			var errs int
			var mu sync.Mutex
			a := policy.NewAttester(sink, policy.WithBatch(tc.batch, time.Millisecond), policy.WithRetryBackoff(time.Millisecond),
				policy.WithErrorHandler(func(error) { mu.Lock(); errs++; mu.Unlock() }))
			want := atts(tc.n)
			for _, x := range want {
				if err := a.Submit(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ids(sink.Attestations()); got != ids(want) {
				t.Fatalf("delivered %s\nwant      %s", got, ids(want))
			}
			mu.Lock()
			defer mu.Unlock()
			if errs != tc.failures {
				t.Fatalf("error handler saw %d failures, want %d", errs, tc.failures)
			}
			if err := a.Submit(ctx, want[0]); !errors.Is(err, policy.ErrAttesterClosed) {
				t.Fatalf("Submit after Close: %v", err)
			}
		})
	}
}

// gate blocks every send until released, to fill the queue.
type gate struct {
	policytest.MemorySink
	release chan struct{}
}

func (g *gate) SendAttestations(ctx context.Context, b []policy.Attestation) error {
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.MemorySink.SendAttestations(ctx, b)
}

func TestAttesterBlocksWhenFullInsteadOfDropping(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	a := policy.NewAttester(g, policy.WithQueueSize(2), policy.WithBatch(1, time.Millisecond))
	// One attestation is held by the blocked sender, two fill the queue.
	for _, x := range atts(3) {
		if err := a.Submit(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	extra := policy.Attestation{DecisionID: "d-3"}
	if err := a.Submit(short, extra); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full queue: err = %v, want it to block until its deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Submit(ctx, extra) }() // blocks, then gets in once the sink moves
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids(g.Attestations()); got != "d-0,d-1,d-2,d-3" {
		t.Fatalf("delivered %s", got)
	}
}

func TestAttesterCloseReportsUndelivered(t *testing.T) {
	sink := &policytest.MemorySink{FailNext: 1 << 30}
	a := policy.NewAttester(sink, policy.WithBatch(2, time.Millisecond), policy.WithRetryBackoff(time.Millisecond),
		policy.WithErrorHandler(func(error) {}))
	for _, x := range atts(5) {
		if err := a.Submit(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	err := a.Close(short)
	if err == nil || !strings.Contains(err.Error(), "5 attestations not delivered") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want 5 undelivered", err)
	}
}

func TestCloseReleasesSubmitsBlockedOnAFullQueue(t *testing.T) {
	g := &gate{release: make(chan struct{})}
	a := policy.NewAttester(g, policy.WithQueueSize(1), policy.WithBatch(1, time.Millisecond))
	for _, x := range atts(2) { // one held by the blocked sender, one fills the queue
		if err := a.Submit(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() { blocked <- a.Submit(ctx, policy.Attestation{DecisionID: "late"}) }()
	time.Sleep(10 * time.Millisecond) // let it block
	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	if err := <-blocked; !errors.Is(err, policy.ErrAttesterClosed) {
		t.Fatalf("blocked Submit = %v, want ErrAttesterClosed", err)
	}
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got := ids(g.Attestations()); got != "d-0,d-1" {
		t.Fatalf("delivered %s; every accepted attestation must be sent", got)
	}
}

func TestWriterSinkWritesJSONLines(t *testing.T) {
	var buf strings.Builder
	s := policy.NewWriterSink(&buf)
	if err := s.SendAttestations(ctx, atts(2)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], `{"type":"policy_attestation","decision_id":"d-1",`) {
		t.Fatalf("lines = %q", lines)
	}
}

func TestAttesterDeliversEveryAcceptedAttestationUnderLoad(t *testing.T) {
	sink := &policytest.MemorySink{FailNext: 2}
	a := policy.NewAttester(sink, policy.WithQueueSize(8), policy.WithBatch(3, 50*time.Microsecond),
		policy.WithRetryBackoff(time.Microsecond), policy.WithErrorHandler(func(error) {}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]bool{}
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				id := fmt.Sprintf("g%d-%d", g, i)
				if err := a.Submit(ctx, policy.Attestation{DecisionID: id}); err != nil {
					if !errors.Is(err, policy.ErrAttesterClosed) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				accepted[id] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Millisecond)
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := map[string]int{}
	for _, x := range sink.Attestations() {
		got[x.DecisionID]++
	}
	for id := range accepted {
		if got[id] != 1 {
			t.Fatalf("%s delivered %d times", id, got[id])
		}
	}
	if len(got) != len(accepted) {
		t.Fatalf("delivered %d, accepted %d", len(got), len(accepted))
	}
}

// refusingSink refuses for good, as Pub/Sub refuses an invalid message, any batch holding
// one of its refused decisions; transient fails that many sends first, as an outage would.
type refusingSink struct {
	policytest.MemorySink
	refused   map[string]bool
	transient int
}

func (r *refusingSink) SendAttestations(ctx context.Context, b []policy.Attestation) error {
	if r.transient > 0 {
		r.transient-- // the Attester's one goroutine is the only caller
		return errors.New("unavailable")
	}
	for _, x := range b {
		if r.refused[x.DecisionID] {
			return fmt.Errorf("publish: %s: invalid argument: %w", x.DecisionID, policy.ErrRefused)
		}
	}
	return r.MemorySink.SendAttestations(ctx, b)
}

// TestAttesterDropsRefusedAndDeliversTheRest: an attestation the sink refuses for good is
// dropped and reported, and every attestation around it and after it is delivered in order,
// however the batch falls and whatever transient failures come first.
func TestAttesterDropsRefusedAndDeliversTheRest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n, batch  int
		refused   []int
		transient int
	}{
		{"first of a batch", 10, 10, []int{0}, 0},
		{"middle of a batch", 10, 10, []int{3}, 0},
		{"last of a batch", 10, 10, []int{9}, 0},
		{"two in one batch, after an outage", 37, 16, []int{5, 6}, 2},
		{"one in every batch", 12, 4, []int{1, 6, 11}, 0},
		{"alone", 1, 10, []int{0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := atts(tc.n)
			sink := &refusingSink{refused: map[string]bool{}, transient: tc.transient}
			var want []policy.Attestation
			for i, x := range all {
				if slices.Contains(tc.refused, i) {
					sink.refused[x.DecisionID] = true
				} else {
					want = append(want, x)
				}
			}
			var mu sync.Mutex
			var dropped []policy.Attestation
			a := policy.NewAttester(sink, policy.WithBatch(tc.batch, time.Millisecond), policy.WithRetryBackoff(time.Millisecond),
				policy.WithErrorHandler(func(error) {}),
				policy.WithDropHandler(func(x policy.Attestation, err error) {
					mu.Lock()
					defer mu.Unlock()
					if !errors.Is(err, policy.ErrRefused) {
						t.Errorf("dropped %s for %v", x.DecisionID, err)
					}
					dropped = append(dropped, x)
				}))
			for _, x := range all {
				if err := a.Submit(ctx, x); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ids(sink.Attestations()); got != ids(want) {
				t.Fatalf("delivered %s\nwant      %s", got, ids(want))
			}
			mu.Lock()
			defer mu.Unlock()
			if len(dropped) != len(tc.refused) || a.Dropped() != int64(len(tc.refused)) {
				t.Fatalf("dropped %s (count %d), want %d", ids(dropped), a.Dropped(), len(tc.refused))
			}
			for _, x := range dropped {
				if !sink.refused[x.DecisionID] {
					t.Fatalf("dropped %s, which the sink took", x.DecisionID)
				}
			}
		})
	}
}
