package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Attestation is the record of one decision, the data of an event on
// policy_attestations (ordering key: correlation_id). Its JSON field names
// are those of the data record in shared/schema/avro/policy_attestations.avsc.
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
// (consumers dedupe on decision_id). An error wrapping ErrRefused says the
// destination refuses some attestation of the batch for good.
type AttestationSink interface {
	SendAttestations(ctx context.Context, batch []Attestation) error
}

// ErrRefused is wrapped by a sink's error when its destination refuses an
// attestation of the batch for good (malformed, too large, an id too long):
// sending it again cannot succeed. The Attester then splits the batch until
// the refused attestation is alone and drops it, logged, instead of holding
// back every decision queued behind it. Any other error is taken as
// transient and the batch is retried.
var ErrRefused = errors.New("attestation refused")

// ErrAttesterClosed is returned by Submit after Close.
var ErrAttesterClosed = errors.New("attester closed")

// Attester queues attestations and sends them in batches from one goroutine,
// off the request path. The queue is bounded; when it is full Submit blocks
// (until there is room or its context ends) rather than drop an attestation.
//
// The queue is a slice the sender appends to and the worker takes whole,
// swapping in the one it has sent: a Submit is one short critical section,
// and the worker neither contends for the lock per attestation nor reads the
// queue's memory except through the sink.
type Attester struct {
	sink     AttestationSink
	size     int // bound on queued plus taken-but-unsent beyond one batch
	batch    int
	interval time.Duration
	backoff  time.Duration
	onError  func(error)
	onDrop   func(Attestation, error)
	dropped  atomic.Int64

	mu      sync.Mutex
	queued  []Attestation
	spare   []Attestation // the worker's buffer; swapped with queued
	pending int           // taken by the worker, not yet sent
	room    chan struct{} // closed when room is made, for Submits blocked on a full queue
	closed  bool

	closing chan struct{} // closed when Close starts: releases Submits blocked on a full queue
	wake    chan struct{} // the first attestation after the worker went idle
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
	return func(a *Attester) { a.size = max(n, 1) }
}

// WithBatch sets the largest batch (default 1000, the most one Pub/Sub publish
// request carries) and how long a partial batch waits for more (default 20ms).
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

// WithDropHandler receives each attestation the sink refused for good, as it
// is dropped; the default logs it at error level.
func WithDropHandler(f func(Attestation, error)) AttesterOption {
	return func(a *Attester) { a.onDrop = f }
}

// NewAttester starts the sending goroutine; stop it with Close.
func NewAttester(sink AttestationSink, opts ...AttesterOption) *Attester {
	a := &Attester{
		sink:     sink,
		size:     4096,
		batch:    1000,
		interval: 20 * time.Millisecond,
		backoff:  100 * time.Millisecond,
		onError: func(err error) {
			slog.Warn("policy attestation send failed; retrying", "error", err)
		},
		onDrop: func(att Attestation, err error) {
			slog.Error("policy attestation refused; dropped", "decision_id", att.DecisionID, "bundle", att.Bundle, "error", err)
		},
		closing: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	for _, o := range opts {
		o(a)
	}
	// Both buffers at their largest from the start: growing one would copy
	// it inside a Submit.
	a.queued = make([]Attestation, 0, a.size+a.batch)
	a.spare = make([]Attestation, 0, a.size+a.batch)
	// Write them once now: fresh memory from the OS is mapped on first
	// write, a page fault that would otherwise land in a Submit about every
	// twenty attestations until both buffers had been filled.
	clear(a.queued[:cap(a.queued)])
	clear(a.spare[:cap(a.spare)])
	go a.run()
	return a
}

// full reports whether the queue has no room; mu is held. The worker may
// hold one batch beyond the queue's size, as a batch it is sending.
func (a *Attester) full() bool { return len(a.queued)+a.pending >= a.size+a.batch }

// Submit queues one attestation. It blocks while the queue is full; it fails
// only when ctx ends first or the attester is closed (or starts closing while
// it waits): the caller must then refuse the decision, not drop the record.
func (a *Attester) Submit(ctx context.Context, att Attestation) error {
	a.mu.Lock()
	for {
		if a.closed {
			a.mu.Unlock()
			return ErrAttesterClosed
		}
		if !a.full() {
			break
		}
		if a.room == nil {
			a.room = make(chan struct{})
		}
		room := a.room
		a.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("attestation queue full: %w", ctx.Err())
		case <-a.closing:
			return ErrAttesterClosed
		}
		a.mu.Lock()
	}
	a.queued = append(a.queued, att)
	n := len(a.queued)
	a.mu.Unlock()
	switch {
	case n == 1:
		select {
		case a.wake <- struct{}{}:
		default:
		}
	case n >= a.size/2:
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Close stops accepting attestations and returns once every queued one has
// been sent. If ctx ends first it gives up and reports how many were not
// delivered.
func (a *Attester) Close(ctx context.Context) error {
	a.once.Do(func() { close(a.closing) })
	a.mu.Lock()
	a.closed = true
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

// run batches without being woken for each attestation: it waits for the
// first one, pauses for the batch interval (cut short by Close or a queue
// half full), then takes the whole queue and sends it in batches, until the
// queue is empty.
func (a *Attester) run() {
	defer close(a.done)
	// One context for every send, cancelled by Close's abort: a watcher
	// per batch would start a goroutine per hundred attestations.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.abort:
			cancel()
		case <-a.done:
		}
	}()
	for {
		select {
		case <-a.wake:
		case <-a.closing:
		}
		a.pause()
		for {
			a.mu.Lock()
			taken := a.queued
			a.queued, a.spare = a.spare[:0], nil
			a.pending = len(taken)
			closed := a.closed
			a.makeRoom()
			a.mu.Unlock()
			for buf := taken; len(buf) > 0; {
				n := min(len(buf), a.batch)
				if !a.send(ctx, buf[:n]) {
					a.drainLost(len(buf))
					return
				}
				buf = buf[n:]
				a.mu.Lock()
				a.pending -= n
				a.makeRoom()
				a.mu.Unlock()
			}
			if closed { // nothing can have been queued since
				return
			}
			a.mu.Lock()
			a.spare = taken[:0]
			empty := len(a.queued) == 0
			a.mu.Unlock()
			if empty {
				break
			}
		}
	}
}

// makeRoom releases Submits waiting for room; mu is held.
func (a *Attester) makeRoom() {
	if a.room != nil {
		close(a.room)
		a.room = nil
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

// Dropped is the number of attestations the sink refused for good.
func (a *Attester) Dropped() int64 { return a.dropped.Load() }

// send retries one batch until the sink takes it; false only when aborted. A
// refused batch is sent again in halves, in order, so the attestations around
// a refused one are delivered and it alone, once alone, is dropped: a batch of
// n with one refusal costs about 2·log2(n) more sends.
func (a *Attester) send(ctx context.Context, batch []Attestation) bool {
	wait := a.backoff
	for {
		err := a.sink.SendAttestations(ctx, batch)
		if err == nil {
			return true
		}
		if errors.Is(err, ErrRefused) {
			if len(batch) == 1 {
				a.dropped.Add(1)
				a.onDrop(batch[0], err)
				return true
			}
			half := len(batch) / 2
			return a.send(ctx, batch[:half]) && a.send(ctx, batch[half:])
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

// drainLost counts the failed batch, the rest of its buffer and everything
// still queued (abort comes only from Close, which has stopped Submit).
func (a *Attester) drainLost(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lost = n + len(a.queued)
}
