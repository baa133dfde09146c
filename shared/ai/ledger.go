package ai

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Firestore collections of the AI spend.
const (
	// CollectionSpend holds one document per cap key: an execution, an agent's UTC day, a
	// trial, each with its limit, its reconciled spend and what calls in flight reserved.
	CollectionSpend = "ai_spend"
	// CollectionCalls holds one document per call: what it reserved and, once settled, its
	// answer and cost.
	CollectionCalls = "ai_calls"
)

// txAttempts lets many calls of one agent contend for its day's document without failing:
// each conflicting transaction is retried, never merged.
const txAttempts = 64

// capEpsilon absorbs float rounding in sums of prices.
const capEpsilon = 1e-9

// spendDoc is one cap's document in ai_spend.
type spendDoc struct {
	Kind         string    `firestore:"kind"` // per_execution, per_agent_day, per_trial
	EngagementID string    `firestore:"engagement_id"`
	Key          string    `firestore:"key"` // the execution, "agent/day" or the trial
	LimitUSD     float64   `firestore:"limit_usd"`
	SpentUSD     float64   `firestore:"spent_usd"`
	ReservedUSD  float64   `firestore:"reserved_usd"`
	Calls        int64     `firestore:"calls"`
	UpdatedAt    time.Time `firestore:"updated_at"`
}

// callRecord is one call's document in ai_calls.
type callRecord struct {
	AskedUSD   float64   `firestore:"asked_usd"`
	Day        string    `firestore:"day"` // the UTC day whose agent cap it was charged to
	Settled    bool      `firestore:"settled"`
	Answer     Answer    `firestore:"answer"`
	ReservedAt time.Time `firestore:"reserved_at"`
	SettledAt  time.Time `firestore:"settled_at"`
}

type ledger struct {
	fs   *firestore.Client
	caps caps
	// stripes queue an instance's own transactions on one agent's documents in process:
	// Firestore locks documents a transaction reads, so calls of one instance contending
	// for them would mostly abort and retry each other. Across instances the transaction
	// alone keeps the caps.
	stripes [64]sync.Mutex
}

func (l *ledger) stripe(c Call) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(c.EngagementID + "\x00" + c.AgentID))
	return &l.stripes[h.Sum32()%uint32(len(l.stripes))]
}

type capRef struct {
	ref *firestore.DocumentRef
	doc spendDoc
}

// refs are the cap documents a call is charged to, in the order caps are checked.
func (l *ledger) refs(c Call, day string) []capRef {
	col := l.fs.Collection(CollectionSpend)
	id := func(kind string, parts ...string) string {
		h := sha256.New()
		for _, p := range append([]string{c.EngagementID}, parts...) {
			fmt.Fprintf(h, "%d:%s", len(p), p)
		}
		return kind + "-" + hex.EncodeToString(h.Sum(nil)[:16])
	}
	out := []capRef{
		{col.Doc(id(CapExecution, c.ExecutionID)), spendDoc{Kind: CapExecution, EngagementID: c.EngagementID, Key: c.ExecutionID, LimitUSD: l.caps.Execution}},
		{col.Doc(id(CapAgentDay, c.AgentID, day)), spendDoc{Kind: CapAgentDay, EngagementID: c.EngagementID, Key: c.AgentID + "/" + day, LimitUSD: l.caps.AgentDay}},
	}
	if c.TrialID != "" {
		out = append(out, capRef{col.Doc(id(CapTrial, c.TrialID)), spendDoc{Kind: CapTrial, EngagementID: c.EngagementID, Key: c.TrialID, LimitUSD: l.caps.Trial}})
	}
	return out
}

// read loads each cap document present into cs (keeping the limit the tables give now).
func read(tx *firestore.Transaction, cs []capRef) error {
	refs := make([]*firestore.DocumentRef, len(cs))
	for i := range cs {
		refs[i] = cs[i].ref
	}
	snaps, err := tx.GetAll(refs)
	if err != nil {
		return fmt.Errorf("ai: read spend: %w", err)
	}
	for i, s := range snaps {
		if !s.Exists() {
			continue
		}
		limit := cs[i].doc.LimitUSD
		if err := s.DataTo(&cs[i].doc); err != nil {
			return fmt.Errorf("ai: spend %s: %w", s.Ref.ID, err)
		}
		cs[i].doc.LimitUSD = limit
	}
	return nil
}

// reserve charges asked to every cap of c in one transaction, or refuses with the first
// cap it would pass. A call already recorded is returned as it stands: settled (answer it
// again) or reserved by an earlier attempt (send it under that reservation).
func (l *ledger) reserve(ctx context.Context, id string, c Call, asked float64, now time.Time) (callRecord, error) {
	callRef := l.fs.Collection(CollectionCalls).Doc(id)
	mu := l.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	var rec callRecord
	err := l.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(callRef)
		if err == nil {
			return snap.DataTo(&rec)
		}
		if status.Code(err) != codes.NotFound {
			return fmt.Errorf("ai: read call %s: %w", id, err)
		}
		rec = callRecord{AskedUSD: asked, Day: now.Format(time.DateOnly), ReservedAt: now}
		cs := l.refs(c, rec.Day)
		if err := read(tx, cs); err != nil {
			return err
		}
		for _, cr := range cs {
			if used := cr.doc.SpentUSD + cr.doc.ReservedUSD; used+asked > cr.doc.LimitUSD+capEpsilon {
				return &CapError{Cap: cr.doc.Kind, LimitUSD: cr.doc.LimitUSD, SpentUSD: used, AskedUSD: asked}
			}
		}
		for _, cr := range cs {
			cr.doc.ReservedUSD += asked
			cr.doc.UpdatedAt = now
			if err := tx.Set(cr.ref, cr.doc); err != nil {
				return fmt.Errorf("ai: reserve: %w", err)
			}
		}
		return tx.Create(callRef, rec)
	}, firestore.MaxAttempts(txAttempts))
	return rec, err
}

// settle turns the call's reservation into its actual cost (nothing when it failed) and
// records the answer; a failed call's record is removed, so asking again sends it again.
func (l *ledger) settle(ctx context.Context, id string, c Call, rec callRecord, ans Answer, now time.Time) (callRecord, error) {
	callRef := l.fs.Collection(CollectionCalls).Doc(id)
	failed := ans.Provider == ""
	mu := l.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	err := l.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(callRef)
		if err != nil {
			return fmt.Errorf("ai: read call %s: %w", id, err)
		}
		var cur callRecord
		if err := snap.DataTo(&cur); err != nil {
			return fmt.Errorf("ai: call %s: %w", id, err)
		}
		if cur.Settled {
			rec = cur
			return nil
		}
		cs := l.refs(c, cur.Day)
		if err := read(tx, cs); err != nil {
			return err
		}
		for _, cr := range cs {
			cr.doc.ReservedUSD = max(cr.doc.ReservedUSD-cur.AskedUSD, 0)
			cr.doc.SpentUSD += ans.CostUSD
			if !failed {
				cr.doc.Calls++
			}
			cr.doc.UpdatedAt = now
			if err := tx.Set(cr.ref, cr.doc); err != nil {
				return fmt.Errorf("ai: settle: %w", err)
			}
		}
		if failed {
			return tx.Delete(callRef)
		}
		rec = cur
		rec.Settled, rec.Answer, rec.SettledAt = true, ans, now
		return tx.Set(callRef, rec)
	}, firestore.MaxAttempts(txAttempts))
	return rec, err
}
