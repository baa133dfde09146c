package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/store"
)

// Receipt says where an event sits in its stream.
type Receipt struct {
	Stream    string
	Seq       int64
	Hash      string
	Duplicate bool // the event was already in the stream; nothing was written
}

// head is the stream's head document: the last entry's seq and hash.
type head struct {
	Seq  int64  `firestore:"seq"`
	Hash string `firestore:"hash"`
}

// indexDoc maps an event id to the entry that carries it.
type indexDoc struct {
	EventID string `firestore:"event_id"`
	Seq     int64  `firestore:"seq"`
	Hash    string `firestore:"hash"`
	// Content is the entry's ContentHash, so that telling a redelivery from a reused id costs
	// no read of the entry. Empty in documents written before it was recorded; the entry is
	// read then.
	Content string `firestore:"content"`
}

// ErrConflict marks an event whose event_id is already in its stream with other content:
// a reused id, by mistake or to hide an event behind another's id. It wraps ErrInvalid, as
// no retry can append it; the error is a *ConflictError.
var ErrConflict = fmt.Errorf("%w: event id reused with other content", ErrInvalid)

// ConflictError describes a refused event whose id the stream already holds.
type ConflictError struct {
	Stream  string
	EventID string
	Seq     int64  // the entry that carries the id
	Stored  string // ContentHash of that entry ("" if it could not be read)
	Got     string // ContentHash of the refused event
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: event %s is seq %d of stream %s with content %s, not %s",
		ErrConflict, e.EventID, e.Seq, e.Stream, orUnknown(e.Stored), e.Got)
}

// Unwrap makes errors.Is find ErrConflict and ErrInvalid.
func (e *ConflictError) Unwrap() error { return ErrConflict }

func orUnknown(s string) string {
	if s == "" {
		return "unknown (entry unreadable)"
	}
	return s
}

// ContentHash is hex(sha256(Canonical(e))) with Seq, PrevHash and Hash cleared: what an
// event says, apart from where the chain put it. Two deliveries of one event have the same.
func ContentHash(e Entry) (string, error) {
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	c, err := Canonical(e)
	if err != nil {
		return "", err
	}
	return contentHash(c), nil
}

func contentHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// Option configures an Appender.
type Option func(*Appender)

// WithMaxBatch caps the events committed in one transaction. Each event writes two
// documents and the head one more; Firestore takes at most 500 writes per commit, so values
// above 249 are lowered to 249.
func WithMaxBatch(n int) Option {
	return func(a *Appender) {
		if n >= 1 {
			a.maxBatch = min(n, maxWritesPerCommit)
		}
	}
}

// WithCommitTimeout bounds one batch transaction, retries included (default 30s).
func WithCommitTimeout(d time.Duration) Option {
	return func(a *Appender) {
		if d > 0 {
			a.commitTimeout = d
		}
	}
}

const (
	maxWritesPerCommit = (500 - 1) / 2
	defaultMaxBatch    = 200
	// maxBatchBytes keeps a commit well under Firestore's 10 MiB request limit; each entry is
	// written about twice its canonical size (fields plus field names).
	maxBatchBytes = 3 << 20
)

// Appender appends audit events to their streams with group commit: while a stream's
// transaction is in flight, further events for it queue up, and the next transaction takes
// them all (read the head once, dedupe against the event-id index, create the entries and
// index documents, write the head once). It is safe for concurrent use; one Appender per
// process is enough.
type Appender struct {
	client        *firestore.Client
	maxBatch      int
	commitTimeout time.Duration

	mu      sync.Mutex
	streams map[string]*queue // streams with a committer running
}

type queue struct {
	pending []*request
}

type request struct {
	entry   Entry
	content string // ContentHash(entry)
	size    int
	done    chan outcome // buffered: the committer never blocks on a caller that left
}

type outcome struct {
	r   Receipt
	err error
}

// NewAppender returns an Appender writing through client.
func NewAppender(client *firestore.Client, opts ...Option) *Appender {
	a := &Appender{client: client, maxBatch: defaultMaxBatch, commitTimeout: 30 * time.Second, streams: map[string]*queue{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Append adds the audit event carried by env to its stream and returns its seq once the
// transaction that carries it has committed. It is idempotent on event_id: an event already
// in the stream with the same content (ContentHash) returns the existing seq with Duplicate
// set and writes nothing; one whose id is there with other content is refused with a
// *ConflictError (ErrConflict) and writes nothing either. Errors wrapping ErrInvalid are
// permanent; any other error may succeed on retry. If ctx ends
// first, Append returns ctx's error while the event may still be committed; a retry then
// finds it as a duplicate.
func (a *Appender) Append(ctx context.Context, env events.Envelope) (Receipt, error) {
	stream, e, err := FromEnvelope(env)
	if err != nil {
		return Receipt{}, err
	}
	return a.AppendEntry(ctx, stream, e)
}

// AppendEntry is Append for an entry already extracted with FromEnvelope; Seq, PrevHash and
// Hash of e are ignored.
func (a *Appender) AppendEntry(ctx context.Context, stream string, e Entry) (Receipt, error) {
	if err := CheckStream(stream); err != nil {
		return Receipt{}, err
	}
	if e.EventID == "" {
		return Receipt{}, fmt.Errorf("%w: no event_id", ErrInvalid)
	}
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
	// An entry without an RFC 8785 form (a string that is not UTF-8) is refused here, before
	// anything is written, rather than hashed in a form no one could recompute.
	c, err := Canonical(e)
	if err != nil {
		return Receipt{}, err
	}
	req := &request{entry: e, content: contentHash(c), size: 2*len(c) + 512, done: make(chan outcome, 1)}
	if req.size > maxBatchBytes {
		return Receipt{}, fmt.Errorf("%w: event %s: %d bytes is too large", ErrInvalid, e.EventID, req.size)
	}

	a.mu.Lock()
	q, running := a.streams[stream]
	if !running {
		q = &queue{}
		a.streams[stream] = q
	}
	q.pending = append(q.pending, req)
	a.mu.Unlock()
	if !running {
		go a.commitLoop(stream, q)
	}

	select {
	case o := <-req.done:
		if o.err != nil {
			return Receipt{}, fmt.Errorf("audit: append %s to %s: %w", e.EventID, stream, o.err)
		}
		return o.r, nil
	case <-ctx.Done():
		return Receipt{}, fmt.Errorf("audit: append %s to %s: %w", e.EventID, stream, ctx.Err())
	}
}

// commitLoop commits the stream's pending events batch after batch and exits when the queue
// is empty. Exactly one loop runs per stream in this process, so batches never race each
// other here; other processes are kept out by the transaction on the head document.
func (a *Appender) commitLoop(stream string, q *queue) {
	for {
		a.mu.Lock()
		n, size := 0, 0
		for n < len(q.pending) && n < a.maxBatch && (n == 0 || size+q.pending[n].size <= maxBatchBytes) {
			size += q.pending[n].size
			n++
		}
		if n == 0 {
			delete(a.streams, stream)
			a.mu.Unlock()
			return
		}
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		a.mu.Unlock()

		a.commitBatch(stream, batch)
	}
}

// commitBatch commits batch and answers every request in it. When Firestore refuses a
// multi-event batch as invalid, each event is tried alone so one bad event cannot block the
// others.
func (a *Appender) commitBatch(stream string, batch []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), a.commitTimeout)
	defer cancel()
	outs, err := a.commit(ctx, stream, batch)
	if err != nil && len(batch) > 1 && status.Code(err) == codes.InvalidArgument {
		for _, r := range batch {
			a.commitBatch(stream, []*request{r})
		}
		return
	}
	if err != nil && status.Code(err) == codes.InvalidArgument {
		err = fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for i, r := range batch {
		if err != nil {
			r.done <- outcome{err: err}
		} else {
			r.done <- outs[i]
		}
	}
}

// commit runs the transaction for one batch and returns an outcome per request: a receipt,
// or a *ConflictError for an event whose id the stream holds with other content.
func (a *Appender) commit(ctx context.Context, stream string, batch []*request) ([]outcome, error) {
	streamRef := a.client.Collection(store.AuditStreams).Doc(stream)
	entries := streamRef.Collection(store.AuditEntries)
	index := streamRef.Collection(store.AuditEventIndex)

	// One index read per distinct event id; a duplicate inside the batch shares the result.
	first := map[string]int{} // event id -> position in ids
	var ids []string
	var firstReq []int // position in ids -> first request carrying that id
	refs := []*firestore.DocumentRef{streamRef}
	for i, r := range batch {
		if _, ok := first[r.entry.EventID]; !ok {
			first[r.entry.EventID] = len(ids)
			ids = append(ids, r.entry.EventID)
			firstReq = append(firstReq, i)
			refs = append(refs, index.Doc(indexID(r.entry.EventID)))
		}
	}

	// Per distinct id, rebuilt on every attempt: its receipt, and the content the stream
	// holds under it.
	var receipts []Receipt
	var contents []string
	err := a.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snaps, err := tx.GetAll(refs)
		if err != nil {
			return fmt.Errorf("read head and index: %w", err)
		}
		h := head{Hash: GenesisHash}
		if snaps[0].Exists() {
			if err := snaps[0].DataTo(&h); err != nil {
				return fmt.Errorf("decode head: %w", err)
			}
		}
		start := h.Seq
		receipts = make([]Receipt, len(ids))
		contents = make([]string, len(ids))
		known := make([]bool, len(ids))
		var legacy []int // positions whose index document predates content hashes
		for pos, id := range ids {
			if s := snaps[1+pos]; s.Exists() {
				var d indexDoc
				if err := s.DataTo(&d); err != nil {
					return fmt.Errorf("decode index of %s: %w", id, err)
				}
				receipts[pos] = Receipt{Stream: stream, Seq: d.Seq, Hash: d.Hash, Duplicate: true}
				contents[pos], known[pos] = d.Content, true
				if d.Content == "" {
					legacy = append(legacy, pos)
				}
			}
		}
		if err := storedContents(tx, entries, legacy, receipts, contents); err != nil {
			return err
		}
		for pos, id := range ids {
			if known[pos] {
				continue
			}
			r := batch[firstReq[pos]]
			e := r.entry
			e.Seq = h.Seq + 1
			e.PrevHash = h.Hash
			if e.Hash, err = ChainHash(h.Hash, e); err != nil {
				return err
			}
			if err := tx.Create(entries.Doc(seqID(e.Seq)), e); err != nil {
				return fmt.Errorf("create entry %d: %w", e.Seq, err)
			}
			if err := tx.Create(index.Doc(indexID(id)), indexDoc{EventID: id, Seq: e.Seq, Hash: e.Hash, Content: r.content}); err != nil {
				return fmt.Errorf("create index of %s: %w", id, err)
			}
			h = head{Seq: e.Seq, Hash: e.Hash}
			receipts[pos] = Receipt{Stream: stream, Seq: e.Seq, Hash: e.Hash}
			contents[pos] = r.content
		}
		if h.Seq == start {
			return nil // every event was a duplicate: nothing to write
		}
		return tx.Set(streamRef, h)
	})
	if err != nil {
		return nil, fmt.Errorf("transaction on stream %s: %w", stream, err)
	}

	out := make([]outcome, len(batch))
	seen := map[string]bool{}
	for i, r := range batch {
		pos := first[r.entry.EventID]
		if r.content != contents[pos] {
			out[i].err = &ConflictError{Stream: stream, EventID: r.entry.EventID, Seq: receipts[pos].Seq,
				Stored: contents[pos], Got: r.content}
			continue
		}
		out[i].r = receipts[pos]
		if seen[r.entry.EventID] {
			out[i].r.Duplicate = true // a second delivery of the same event in this batch
		}
		seen[r.entry.EventID] = true
	}
	return out, nil
}

// storedContents fills contents[pos] for the index documents at positions legacy, which
// have no content hash, from the entries they point at: one read for all of them, before
// the transaction writes anything. An entry that is missing or unreadable leaves "", which
// no event matches.
func storedContents(tx *firestore.Transaction, entries *firestore.CollectionRef, legacy []int, receipts []Receipt, contents []string) error {
	if len(legacy) == 0 {
		return nil
	}
	refs := make([]*firestore.DocumentRef, len(legacy))
	for i, pos := range legacy {
		refs[i] = entries.Doc(seqID(receipts[pos].Seq))
	}
	snaps, err := tx.GetAll(refs)
	if err != nil {
		return fmt.Errorf("read entries of older index documents: %w", err)
	}
	for i, s := range snaps {
		var e Entry
		if !s.Exists() || s.DataTo(&e) != nil {
			continue
		}
		if c, err := ContentHash(e); err == nil {
			contents[legacy[i]] = c
		}
	}
	return nil
}
