package audit

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/store"
)

// ErrUnknownStream is returned by Verify for a stream with neither a head nor entries.
var ErrUnknownStream = errors.New("audit: unknown stream")

// Report is the outcome of verifying one stream.
type Report struct {
	OK bool `json:"ok"`
	// Entries counts the entries whose links verified: all of them when OK, else those
	// before FirstBadSeq.
	Entries int `json:"entries"`
	// HeadHash is the hash the head document records ("" if the head is missing).
	HeadHash string `json:"head_hash"`
	// FirstBadSeq is the first seq whose link is broken: an altered entry, a missing one
	// (gap), or the head disagreeing with the last entry. nil when OK.
	FirstBadSeq *int64 `json:"first_bad_seq"`
	// IndexBadSeq is the first seq at which the event-id index disagrees with the entries
	// that verified: an entry without its index document, a document naming another event
	// id, hash or content, or a document for a seq that has no entry (which would make a
	// genuine event with that id be taken for a redelivery). nil when the index matches.
	IndexBadSeq *int64 `json:"index_bad_seq"`
	// IndexProblem says what is wrong at IndexBadSeq.
	IndexProblem string `json:"index_problem,omitempty"`
}

// Verify walks stream in seq order inside one read-only transaction (a consistent snapshot,
// so appends running meanwhile cannot be mistaken for damage), recomputes every hash, and
// reports the first bad link. The error is for failures to read, never for a broken chain.
func Verify(ctx context.Context, client *firestore.Client, stream string) (Report, error) {
	if err := CheckStream(stream); err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	// Damage stays; a walk that raced an append does not. Firestore's read-only transaction
	// is one snapshot, but the emulator's is not (a head read before a batch committed and
	// entries read after it, or the reverse), so a break is confirmed by walking again: only
	// one found at the same seq every time is reported.
	rep, err := verifyOnce(ctx, client, stream)
	for try := 1; err == nil && !rep.OK && try < verifyConfirmations; try++ {
		var again Report
		if again, err = verifyOnce(ctx, client, stream); err == nil && !sameBreak(rep, again) {
			rep = again
		}
	}
	return rep, err
}

// verifyConfirmations is how many walks in all a reported break takes.
const verifyConfirmations = 3

func sameBreak(a, b Report) bool {
	return !b.OK && sameSeq(a.FirstBadSeq, b.FirstBadSeq) && sameSeq(a.IndexBadSeq, b.IndexBadSeq)
}

func sameSeq(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

// verifyOnce is one walk of the stream.
func verifyOnce(ctx context.Context, client *firestore.Client, stream string) (Report, error) {
	streamRef := client.Collection(store.AuditStreams).Doc(stream)
	var rep Report
	err := client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		var c checker
		c.reset()
		var h *head
		snap, err := tx.Get(streamRef)
		switch {
		case status.Code(err) == codes.NotFound:
		case err != nil:
			return fmt.Errorf("read head: %w", err)
		default:
			h = &head{}
			if err := snap.DataTo(h); err != nil {
				h = &head{Seq: -1} // a head of the wrong shape cannot match any entry
			}
		}
		it := tx.Documents(streamRef.Collection(store.AuditEntries).OrderBy(firestore.DocumentID, firestore.Asc))
		defer it.Stop()
		ix := indexChecker{it: tx.Documents(streamRef.Collection(store.AuditEventIndex).OrderBy("seq", firestore.Asc))}
		defer ix.it.Stop()
		seen := 0
		for c.bad == nil {
			doc, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return fmt.Errorf("read entries: %w", err)
			}
			seen++
			var e Entry
			if err := doc.DataTo(&e); err != nil {
				c.fail() // a field of the wrong type is damage, not a read failure
				break
			}
			c.add(doc.Ref.ID, e)
			if c.bad == nil {
				if err := ix.entry(e); err != nil {
					return err
				}
			}
		}
		if h == nil && seen == 0 {
			return ErrUnknownStream
		}
		rep = c.finish(h)
		if rep.OK {
			// Index documents left over point past the last entry. Past a break in the
			// chain they are not judged: the entries they would match did not verify.
			if err := ix.finish(int64(rep.Entries)); err != nil {
				return err
			}
		}
		if ix.bad != nil {
			rep.OK, rep.IndexBadSeq, rep.IndexProblem = false, ix.bad, ix.why
		}
		return nil
	}, firestore.ReadOnly)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify %s: %w", stream, err)
	}
	return rep, nil
}

// checker follows a chain entry by entry; it is the pure part of Verify.
type checker struct {
	n    int64  // seq of the last entry whose link verified
	hash string // its hash (GenesisHash before the first)
	bad  *int64
}

func (c *checker) reset() { *c = checker{hash: GenesisHash} }

// fail marks the next expected seq as the first bad link.
func (c *checker) fail() {
	if c.bad == nil {
		s := c.n + 1
		c.bad = &s
	}
}

// add checks the entry stored under document id docID, which must be the next seq, link to
// the previous hash and hash to its recorded value.
func (c *checker) add(docID string, e Entry) {
	if c.bad != nil {
		return
	}
	next := c.n + 1
	hash, err := ChainHash(c.hash, e)
	if docID != seqID(next) || e.Seq != next || e.PrevHash != c.hash || err != nil || hash != e.Hash {
		c.fail()
		return
	}
	c.n, c.hash = next, e.Hash
}

// finish compares the head (nil if missing) with the last verified entry.
func (c *checker) finish(h *head) Report {
	rep := Report{Entries: int(c.n)}
	if h != nil {
		rep.HeadHash = h.Hash
	}
	if c.bad == nil {
		if h == nil {
			h = &head{Hash: GenesisHash} // entries without a head: the head was removed
		}
		switch {
		case h.Seq > c.n:
			c.fail() // the head points past the last entry: entries are missing
		case h.Seq < c.n:
			s := max(h.Seq, 0) + 1 // entries beyond the head were not written by an append
			c.bad = &s
		case h.Hash != c.hash:
			s := c.n // the last entry was rewritten consistently, or the head was altered
			c.bad = &s
		}
	}
	if c.bad != nil {
		if *c.bad <= c.n {
			rep.Entries = int(*c.bad - 1)
		}
		rep.FirstBadSeq = c.bad
		return rep
	}
	rep.OK = true
	return rep
}

// indexChecker walks the event-id index in seq order beside the entries, which must match
// it one to one: entry n has the document indexID(event_id) with seq n, its event id, hash
// and content hash, and no document names a seq without an entry.
type indexChecker struct {
	it   *firestore.DocumentIterator
	next *firestore.DocumentSnapshot // read ahead; nil before the first read and at the end
	read bool                        // next holds the document to compare, or the end
	bad  *int64
	why  string
}

// peek returns the next index document without consuming it, nil at the end.
func (x *indexChecker) peek() (*firestore.DocumentSnapshot, error) {
	if !x.read {
		doc, err := x.it.Next()
		switch {
		case errors.Is(err, iterator.Done):
			doc = nil
		case err != nil:
			return nil, fmt.Errorf("read event-id index: %w", err)
		}
		x.next, x.read = doc, true
	}
	return x.next, nil
}

func (x *indexChecker) fail(seq int64, why string) {
	if x.bad == nil {
		s := max(seq, 1)
		x.bad, x.why = &s, why
	}
}

// entry compares the next index document with e, an entry whose link verified.
func (x *indexChecker) entry(e Entry) error {
	if x.bad != nil {
		return nil
	}
	doc, err := x.peek()
	if err != nil {
		return err
	}
	var d indexDoc
	switch {
	case doc == nil:
		x.fail(e.Seq, "entry has no index document")
		return nil
	case doc.DataTo(&d) != nil:
		x.fail(e.Seq, "index document "+doc.Ref.ID+" is not an index document")
		return nil
	case d.Seq > e.Seq:
		x.fail(e.Seq, "entry has no index document")
		return nil
	case d.Seq < e.Seq:
		x.fail(d.Seq, "index document "+doc.Ref.ID+" names a seq another document names")
		return nil
	}
	x.read = false
	content, err := ContentHash(e)
	switch {
	case doc.Ref.ID != indexID(e.EventID) || d.EventID != e.EventID:
		x.fail(e.Seq, "index document "+doc.Ref.ID+" names another event id")
	case d.Hash != e.Hash:
		x.fail(e.Seq, "index document "+doc.Ref.ID+" records another hash")
	case d.Content != "" && (err != nil || d.Content != content):
		// Empty in documents written before content hashes were recorded.
		x.fail(e.Seq, "index document "+doc.Ref.ID+" records other content")
	}
	return nil
}

// finish reports an index document left after the last entry, seq last.
func (x *indexChecker) finish(last int64) error {
	if x.bad != nil {
		return nil
	}
	doc, err := x.peek()
	if err != nil || doc == nil {
		return err
	}
	var d indexDoc
	if doc.DataTo(&d) != nil {
		x.fail(last+1, "index document "+doc.Ref.ID+" is not an index document")
		return nil
	}
	x.fail(d.Seq, "index document "+doc.Ref.ID+" names a seq without an entry")
	return nil
}
