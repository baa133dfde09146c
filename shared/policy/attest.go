package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Attestation is the record of one decision, the data of an event on
// policy_attestations (ordering key: correlation_id). Its JSON field names
// are those of shared/schema/avro/policy_attestations.avsc, plus rule and
// cached.
type Attestation struct {
	DecisionID       string    `json:"decision_id"`
	Bundle           string    `json:"bundle"`
	Rule             string    `json:"rule"`
	Revision         string    `json:"revision"`
	Decision         string    `json:"decision"` // allow | deny | allow_with_obligations
	Obligations      []string  `json:"obligations"`
	InputSHA256      string    `json:"input_sha256"`
	EnforcementPoint string    `json:"enforcement_point"`
	CorrelationID    string    `json:"correlation_id"`
	Cached           bool      `json:"cached"`
	Time             time.Time `json:"decided_at"`
}

// AttestationSink delivers a batch of attestations, for example to Pub/Sub.
// It returns nil only when the whole batch is durably accepted; on error the
// Attester sends the same batch again, so a sink must tolerate duplicates
// (consumers dedupe on decision_id).
type AttestationSink interface {
	SendAttestations(ctx context.Context, batch []Attestation) error
}

// ErrAttesterClosed is returned by Submit after Close.
var ErrAttesterClosed = errors.New("attester closed")

// Attester queues attestations and sends them in batches from one goroutine,
// off the request path. The queue is bounded; when it is full Submit blocks
// (until there is room or its context ends) rather than drop an attestation.
type Attester struct {
	sink     AttestationSink
	queue    chan Attestation
	batch    int
	interval time.Duration
	backoff  time.Duration
	onError  func(error)

	mu      sync.RWMutex // Submit holds it shared; Close exclusively, to close queue safely
	closed  bool
	closing chan struct{} // closed when Close starts: releases Submits blocked on a full queue
	kick    chan struct{} // ends the batch pause early when the queue is half full
	once    sync.Once
	abort   chan struct{}
	done    chan struct{}
	lost    int // written by the worker before done closes
}

// AttesterOption configures NewAttester.
type AttesterOption func(*Attester)

// WithQueueSize bounds the number of queued attestations (default 4096).
func WithQueueSize(n int) AttesterOption {
	return func(a *Attester) { a.queue = make(chan Attestation, max(n, 1)) }
}

// WithBatch sets the largest batch (default 100) and how long a partial batch
// waits for more (default 20ms).
func WithBatch(size int, wait time.Duration) AttesterOption {
	return func(a *Attester) { a.batch, a.interval = max(size, 1), wait }
}

// WithRetryBackoff sets the first pause after a failed send (default 100ms);
// it doubles up to 32 times that.
func WithRetryBackoff(d time.Duration) AttesterOption {
	return func(a *Attester) { a.backoff = d }
}

// WithErrorHandler receives each failed send; the default logs it.
func WithErrorHandler(f func(error)) AttesterOption {
	return func(a *Attester) { a.onError = f }
}

// NewAttester starts the sending goroutine; stop it with Close.
func NewAttester(sink AttestationSink, opts ...AttesterOption) *Attester {
	a := &Attester{
		sink:     sink,
		queue:    make(chan Attestation, 4096),
		batch:    100,
		interval: 20 * time.Millisecond,
		backoff:  100 * time.Millisecond,
		onError: func(err error) {
			slog.Warn("policy attestation send failed; retrying", "error", err)
		},
		closing: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(a)
	}
	go a.run()
	return a
}

// Submit queues one attestation. It blocks while the queue is full; it fails
// only when ctx ends first or the attester is closed (or starts closing while
// it waits): the caller must then refuse the decision, not drop the record.
func (a *Attester) Submit(ctx context.Context, att Attestation) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return ErrAttesterClosed
	}
	select {
	case a.queue <- att:
		if len(a.queue) >= cap(a.queue)/2 {
			select {
			case a.kick <- struct{}{}:
			default:
			}
		}
		return nil
	default:
	}
	select {
	case a.queue <- att:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("attestation queue full: %w", ctx.Err())
	case <-a.closing:
		return ErrAttesterClosed
	}
}

// Close stops accepting attestations and returns once every queued one has
// been sent. If ctx ends first it gives up and reports how many were not
// delivered.
func (a *Attester) Close(ctx context.Context) error {
	a.once.Do(func() { close(a.closing) })
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-a.abort:
	default:
		close(a.abort)
	}
	<-a.done
	if a.lost == 0 {
		return nil
	}
	return fmt.Errorf("policy: attester close: %d attestations not delivered: %w", a.lost, ctx.Err())
}

// run batches without being woken for each attestation: it blocks for the
// first one, pauses for the batch interval (cut short by Close or a queue
// half full), then drains the queue in batches.
func (a *Attester) run() {
	defer close(a.done)
	buf := make([]Attestation, 0, a.batch)
	for {
		att, ok := <-a.queue
		if !ok {
			return
		}
		buf = append(buf[:0], att)
		a.pause()
		for open := true; ; {
			buf, open = a.fill(buf)
			if len(buf) > 0 && !a.send(buf) {
				a.drainLost(len(buf))
				return
			}
			buf = buf[:0]
			if !open {
				return
			}
			if len(a.queue) == 0 {
				break
			}
		}
	}
}

func (a *Attester) pause() {
	t := time.NewTimer(a.interval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.kick:
	case <-a.closing:
	}
}

// fill adds queued attestations to buf without blocking, up to a batch;
// open is false once the queue is closed and empty.
func (a *Attester) fill(buf []Attestation) (_ []Attestation, open bool) {
	for len(buf) < a.batch {
		select {
		case att, ok := <-a.queue:
			if !ok {
				return buf, false
			}
			buf = append(buf, att)
		default:
			return buf, true
		}
	}
	return buf, true
}

// send retries one batch until the sink takes it; false only when aborted.
func (a *Attester) send(batch []Attestation) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	wait := a.backoff
	for {
		err := a.sink.SendAttestations(ctx, batch)
		if err == nil {
			return true
		}
		a.onError(fmt.Errorf("send %d attestations: %w", len(batch), err))
		select {
		case <-a.abort:
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, a.backoff*32)
	}
}

// drainLost counts the failed batch and everything still queued.
func (a *Attester) drainLost(n int) {
	a.lost = n
	for range a.queue { // abort comes only from Close, which has closed the queue
		a.lost++
	}
}

// MemorySink keeps attestations in memory, for tests. FailNext makes that
// many following sends fail, to exercise retries.
type MemorySink struct {
	mu       sync.Mutex
	batches  [][]Attestation
	FailNext int
}

// SendAttestations records a copy of batch.
func (m *MemorySink) SendAttestations(_ context.Context, batch []Attestation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailNext > 0 {
		m.FailNext--
		return errors.New("memory sink: injected failure")
	}
	m.batches = append(m.batches, append([]Attestation(nil), batch...))
	return nil
}

// Attestations returns everything received, in order.
func (m *MemorySink) Attestations() []Attestation {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Attestation
	for _, b := range m.batches {
		out = append(out, b...)
	}
	return out
}

// Batches reports how many sends succeeded.
func (m *MemorySink) Batches() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.batches)
}
