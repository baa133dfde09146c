package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/store"
)

// Checkpoint is a stream's head as a check last found it verified: the anchor the next
// check links to, so that it reads only what was appended since.
type Checkpoint struct {
	Stream   string `json:"stream"`
	Seq      int64  `json:"seq"`
	HeadHash string `json:"head_hash"`
	Time     string `json:"time"` // when this head was first verified, RFC 3339 UTC
}

// Anchor is the checkpoint of every known stream at one check, the unit that is signed and
// stored write-once. Checkpoints are sorted by stream.
type Anchor struct {
	Time        string       `json:"time"`
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// Checkpoint returns the anchor's checkpoint of stream.
func (a *Anchor) Checkpoint(stream string) (Checkpoint, bool) {
	i, ok := slices.BinarySearchFunc(a.Checkpoints, stream, func(c Checkpoint, s string) int {
		return cmpString(c.Stream, s)
	})
	if !ok {
		return Checkpoint{}, false
	}
	return a.Checkpoints[i], true
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ErrBadSignature is returned by OpenAnchor for a document whose signature does not verify.
var ErrBadSignature = errors.New("audit: anchor signature does not verify")

// signedAnchor is an anchor as stored: the anchor's exact JSON bytes and their
// HMAC-SHA256, so verifying needs no re-encoding.
type signedAnchor struct {
	Anchor    json.RawMessage `json:"anchor"`
	Algorithm string          `json:"alg"`
	Signature string          `json:"sig"` // hex
}

const anchorAlg = "HS256"

// SealAnchor returns the stored form of a, signed with key (HMAC-SHA256).
func SealAnchor(key []byte, a Anchor) ([]byte, error) {
	if len(key) < 32 {
		return nil, errors.New("audit: anchor key shorter than 32 bytes")
	}
	body, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("audit: anchor: %w", err)
	}
	b, err := json.Marshal(signedAnchor{Anchor: body, Algorithm: anchorAlg, Signature: hex.EncodeToString(mac(key, body))})
	if err != nil {
		return nil, fmt.Errorf("audit: anchor: %w", err)
	}
	return b, nil
}

// OpenAnchor checks the signature of a stored anchor and decodes it. A signature that does
// not verify wraps ErrBadSignature.
func OpenAnchor(key, doc []byte) (Anchor, error) {
	var s signedAnchor
	if err := json.Unmarshal(doc, &s); err != nil {
		return Anchor{}, fmt.Errorf("audit: anchor: %w", err)
	}
	sig, err := hex.DecodeString(s.Signature)
	if err != nil || s.Algorithm != anchorAlg || !hmac.Equal(sig, mac(key, s.Anchor)) {
		return Anchor{}, ErrBadSignature
	}
	var a Anchor
	if err := json.Unmarshal(s.Anchor, &a); err != nil {
		return Anchor{}, fmt.Errorf("audit: anchor: %w", err)
	}
	return a, nil
}

func mac(key, b []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return h.Sum(nil)
}

// Kinds of Break.
const (
	// BreakShorter: the head's seq is below the checkpoint's (the tail was cut).
	BreakShorter = "shorter_than_checkpoint"
	// BreakRewritten: the entry at the checkpoint's seq, or the head standing there, no longer
	// has the checkpointed hash.
	BreakRewritten = "rewritten_tail"
	// BreakVanished: a checkpointed stream is no longer in audit_streams.
	BreakVanished = "vanished"
	// BreakLink: an entry appended since the checkpoint does not link (altered, missing, or
	// the head disagreeing with the last entry).
	BreakLink = "broken_link"
)

// Break is damage a check found in one stream.
type Break struct {
	Stream string `json:"stream"`
	Kind   string `json:"kind"`
	Seq    int64  `json:"seq"` // where: the checkpoint's seq, or the first bad seq of a link
	Detail string `json:"detail"`
}

// CheckResult is the outcome of CheckSince.
type CheckResult struct {
	// Anchor holds a checkpoint per stream: the verified head of each stream that checked
	// out, the previous checkpoint of each that broke or vanished (so the next check reports
	// it again until someone acts).
	Anchor Anchor
	// Changed says whether Anchor differs from the previous one (a stream grew or appeared):
	// only then is it worth storing.
	Changed bool
	Breaks  []Break
	// Streams is how many heads were listed; EntriesRead how many entry documents were read.
	Streams     int
	EntriesRead int
}

// CheckSince lists every stream's head and verifies, per stream, only what was appended after
// its checkpoint in prev: one read of the entry at the checkpoint's seq (it must still carry
// the checkpointed hash), then the entries after it up to the head, the first linking to the
// checkpointed hash. A stream without a checkpoint is walked from its first entry. The
// Firestore reads are the heads plus, per stream, the new entries and one more. The error is
// for failures to read, never for damage, which is in Breaks.
func CheckSince(ctx context.Context, client *firestore.Client, prev Anchor, now time.Time) (CheckResult, error) {
	at := now.UTC().Format(time.RFC3339Nano)
	res := CheckResult{Anchor: Anchor{Time: at}}
	it := client.Collection(store.AuditStreams).Documents(ctx)
	defer it.Stop()
	listed := map[string]bool{}
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return CheckResult{}, fmt.Errorf("audit: check: list streams: %w", err)
		}
		res.Streams++
		stream := snap.Ref.ID
		listed[stream] = true
		cp, had := prev.Checkpoint(stream)
		if !had {
			cp = Checkpoint{Stream: stream, HeadHash: GenesisHash}
		}
		var h head
		if err := snap.DataTo(&h); err != nil {
			res.addBreak(Break{Stream: stream, Kind: BreakLink, Seq: cp.Seq + 1, Detail: "head of the wrong shape"}, cp, had)
			continue
		}
		b, read, err := checkStream(ctx, client, cp, h)
		res.EntriesRead += read
		if err != nil {
			return CheckResult{}, err
		}
		if b != nil {
			res.addBreak(*b, cp, had)
			continue
		}
		if !had || h.Seq != cp.Seq {
			res.Changed = true
			cp = Checkpoint{Stream: stream, Seq: h.Seq, HeadHash: h.Hash, Time: at}
		}
		res.Anchor.Checkpoints = append(res.Anchor.Checkpoints, cp)
	}
	for _, cp := range prev.Checkpoints {
		if !listed[cp.Stream] {
			res.addBreak(Break{Stream: cp.Stream, Kind: BreakVanished, Seq: cp.Seq,
				Detail: fmt.Sprintf("checkpointed at seq %d, no longer in %s", cp.Seq, store.AuditStreams)}, cp, true)
		}
	}
	slices.SortFunc(res.Anchor.Checkpoints, func(a, b Checkpoint) int { return cmpString(a.Stream, b.Stream) })
	slices.SortFunc(res.Breaks, func(a, b Break) int { return cmpString(a.Stream, b.Stream) })
	return res, nil
}

// addBreak records b and keeps the stream's previous checkpoint, if it had one.
func (r *CheckResult) addBreak(b Break, cp Checkpoint, had bool) {
	r.Breaks = append(r.Breaks, b)
	if had {
		r.Anchor.Checkpoints = append(r.Anchor.Checkpoints, cp)
	}
}

// checkStream verifies the stream from checkpoint cp to head h and returns the break found
// (nil if none) and the entries read.
func checkStream(ctx context.Context, client *firestore.Client, cp Checkpoint, h head) (*Break, int, error) {
	stream := cp.Stream
	entries := client.Collection(store.AuditStreams).Doc(stream).Collection(store.AuditEntries)
	if h.Seq < cp.Seq {
		return &Break{Stream: stream, Kind: BreakShorter, Seq: cp.Seq,
			Detail: fmt.Sprintf("head at seq %d, checkpoint at seq %d", h.Seq, cp.Seq)}, 0, nil
	}
	read := 0
	if cp.Seq > 0 {
		read++
		snap, err := entries.Doc(seqID(cp.Seq)).Get(ctx)
		var e Entry
		switch {
		case status.Code(err) == codes.NotFound:
			return &Break{Stream: stream, Kind: BreakRewritten, Seq: cp.Seq, Detail: "the checkpointed entry is gone"}, read, nil
		case err != nil:
			return nil, read, fmt.Errorf("audit: check %s: read entry %d: %w", stream, cp.Seq, err)
		case snap.DataTo(&e) != nil || e.Hash != cp.HeadHash:
			return &Break{Stream: stream, Kind: BreakRewritten, Seq: cp.Seq,
				Detail: fmt.Sprintf("entry %d no longer has the checkpointed hash %s", cp.Seq, cp.HeadHash)}, read, nil
		}
	}
	if h.Seq == cp.Seq {
		if h.Hash != cp.HeadHash {
			return &Break{Stream: stream, Kind: BreakRewritten, Seq: cp.Seq,
				Detail: fmt.Sprintf("head at seq %d no longer has the checkpointed hash", cp.Seq)}, read, nil
		}
		return nil, read, nil
	}
	// Bounded by the head as listed: entries appended meanwhile are left for the next check
	// and cannot be mistaken for entries beyond the head.
	c := checker{n: cp.Seq, hash: cp.HeadHash}
	it := entries.OrderBy(firestore.DocumentID, firestore.Asc).StartAfter(seqID(cp.Seq)).EndAt(seqID(h.Seq)).Documents(ctx)
	defer it.Stop()
	for c.bad == nil {
		doc, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, read, fmt.Errorf("audit: check %s: read entries after %d: %w", stream, cp.Seq, err)
		}
		read++
		var e Entry
		if err := doc.DataTo(&e); err != nil {
			c.fail()
			break
		}
		c.add(doc.Ref.ID, e)
	}
	if rep := c.finish(&h); !rep.OK {
		return &Break{Stream: stream, Kind: BreakLink, Seq: *rep.FirstBadSeq,
			Detail: fmt.Sprintf("first bad link at seq %d after checkpoint %d", *rep.FirstBadSeq, cp.Seq)}, read, nil
	}
	return nil, read, nil
}
