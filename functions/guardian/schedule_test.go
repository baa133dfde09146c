package guardian_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"waooaw.dev/governance/functions/guardian"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/gcsemu"
	"waooaw.dev/governance/infra/local/meter"
	tables "waooaw.dev/governance/rules"
	auditlog "waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/store"
)

const anchorBucket = "waooaw-audit-anchors"

// checker is the guardian with anchoring on loopback, against the emulators and a local
// Cloud Storage whose bucket keeps objects for a day.
type checker struct {
	url    string
	fs     *firestore.Client // the admin's client: straight to the emulator
	tap    *emulators.Tap
	bucket *storage.BucketHandle
	app    *auditlog.Appender
}

// newChecker starts it; with metered set, the guardian reaches Firestore through the usage
// meter's proxy, which the returned meter counts.
func newChecker(t *testing.T, metered bool) (*checker, *meter.Meter) {
	t.Helper()
	env := emulators.ForTest(t)
	c := &checker{fs: env.Firestore(t), tap: env.Tap(t)} // provisions every topic
	c.app = auditlog.NewAppender(c.fs)
	guardFS := c.fs
	var m *meter.Meter
	if metered {
		m = meter.New()
		p, err := m.Firestore("127.0.0.1:0", env.FirestoreHost)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		t.Setenv("FIRESTORE_EMULATOR_HOST", p.Addr())
		if guardFS, err = firestore.NewClient(context.Background(), env.Project); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { guardFS.Close() })
	}

	gcs, err := gcsemu.Start("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gcs.Close() })
	if err := gcs.CreateBucket(anchorBucket, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORAGE_EMULATOR_HOST", gcs.Host())
	sc, err := storage.NewClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	c.bucket = sc.Bucket(anchorBucket)

	pub := guardian.NewPublisher(env.PubSub(t))
	t.Cleanup(pub.Close)
	set, err := rules.Load(tables.FS)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	s, err := guardian.New(guardian.Options{Firestore: guardFS, Publisher: pub, Rules: set, Anchoring: &guardian.Anchoring{
		Store: guardian.GCSAnchors{Bucket: c.bucket},
		Key:   func(context.Context) ([]byte, error) { return key, nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c.url = srv.URL
	return c, m
}

// check posts as Cloud Scheduler does.
func (c *checker) check(t *testing.T) guardian.CheckReport {
	t.Helper()
	resp, err := http.Post(c.url+guardian.AuditCheckPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("audit check: %d %s", resp.StatusCode, b)
	}
	var rep guardian.CheckReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("audit check answered %s: %v", b, err)
	}
	return rep
}

func (c *checker) appendN(t *testing.T, stream string, from, n int) {
	t.Helper()
	for i := range n {
		e := auditlog.Entry{EventID: fmt.Sprintf("%s-%d", stream, from+i), Time: "2026-12-01T10:00:00Z", EventType: "decision",
			ActorID: "gov-1", ActorType: "human", Action: "approve", Target: fmt.Sprintf("agent-%d", from+i), Result: "approved"}
		if _, err := c.app.AppendEntry(context.Background(), stream, e); err != nil {
			t.Fatal(err)
		}
	}
}

func (c *checker) anchors(t *testing.T) []string {
	t.Helper()
	var names []string
	it := c.bucket.Objects(context.Background(), &storage.Query{Prefix: guardian.AnchorPrefix})
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.Name)
	}
}

func entryAt(t *testing.T, s *firestore.DocumentRef, seq int64) (*firestore.DocumentRef, auditlog.Entry) {
	t.Helper()
	ref := s.Collection(store.AuditEntries).Doc(fmt.Sprintf("%020d", seq))
	snap, err := ref.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var e auditlog.Entry
	if err := snap.DataTo(&e); err != nil {
		t.Fatal(err)
	}
	return ref, e
}

// TestScheduledCheckDetectsTampering anchors a stream, tampers with it through the admin
// client, and expects the next scheduled check to raise a critical alert and a platform
// audit entry, and to anchor nothing over the damage.
func TestScheduledCheckDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		tamper   func(t *testing.T, c *checker, s *firestore.DocumentRef)
		wantKind string
	}{
		{"tail truncated", func(t *testing.T, c *checker, s *firestore.DocumentRef) {
			for seq := int64(8); seq <= 10; seq++ {
				ref, _ := entryAt(t, s, seq)
				if _, err := ref.Delete(ctx); err != nil {
					t.Fatalf("tamper: %v", err)
				}
			}
			_, e := entryAt(t, s, 7)
			if _, err := s.Set(ctx, map[string]any{"seq": int64(7), "hash": e.Hash}); err != nil {
				t.Fatalf("tamper: %v", err)
			}
		}, auditlog.BreakShorter},
		{"last entry and head rewritten together", func(t *testing.T, c *checker, s *firestore.DocumentRef) {
			ref, e := entryAt(t, s, 10)
			e.Result = "denied"
			var err error
			if e.Hash, err = auditlog.ChainHash(e.PrevHash, e); err != nil {
				t.Fatal(err)
			}
			if _, err := ref.Set(ctx, e); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			if _, err := s.Set(ctx, map[string]any{"seq": int64(10), "hash": e.Hash}); err != nil {
				t.Fatalf("tamper: %v", err)
			}
		}, auditlog.BreakRewritten},
		{"whole stream deleted", func(t *testing.T, c *checker, s *firestore.DocumentRef) {
			for _, coll := range []string{store.AuditEntries, store.AuditEventIndex} {
				refs, err := s.Collection(coll).DocumentRefs(ctx).GetAll()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range refs {
					if _, err := r.Delete(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := s.Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}, auditlog.BreakVanished},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newChecker(t, false)
			const stream = "eng-a"
			c.appendN(t, stream, 0, 10)
			first := c.check(t)
			if len(first.Breaks) != 0 || first.Anchor == "" {
				t.Fatalf("first check %+v: want an anchor and no break", first)
			}
			c.tap.Drain(t, time.Second) // the appends' nothing; start clean

			tt.tamper(t, c, c.fs.Collection(store.AuditStreams).Doc(stream))
			rep := c.check(t)
			if len(rep.Breaks) != 1 || rep.Breaks[0].Stream != stream || rep.Breaks[0].Kind != tt.wantKind {
				t.Fatalf("breaks %+v, want one %s on %s", rep.Breaks, tt.wantKind, stream)
			}
			if rep.Anchor != "" || rep.Previous != first.Anchor {
				t.Fatalf("anchor %q over %q: want nothing anchored over the damage, checked against %q", rep.Anchor, rep.Previous, first.Anchor)
			}
			if got := c.anchors(t); len(got) != 1 {
				t.Fatalf("anchors %q, want the first one only", got)
			}

			got := c.tap.Drain(t, 2*time.Second)
			alerts := got[events.TopicSLOBreach]
			if len(alerts) != 1 {
				t.Fatalf("%d alerts on %s, want 1", len(alerts), events.TopicSLOBreach)
			}
			var alert struct {
				EventID      string `json:"event_id"`
				EngagementID string `json:"engagement_id"`
				Data         struct {
					Service, Severity, SLO string
				} `json:"data"`
			}
			if err := json.Unmarshal(alerts[0].Data, &alert); err != nil {
				t.Fatal(err)
			}
			if alert.Data.Severity != "critical" || alert.Data.Service != guardian.AlertService || alert.EngagementID != stream {
				t.Fatalf("alert %s", alerts[0].Data)
			}
			var recorded []auditlog.Entry
			for _, m := range got[events.TopicAuditEvents] {
				var env events.Envelope
				if err := json.Unmarshal(m.Data, &env); err != nil {
					t.Fatal(err)
				}
				s, e, err := auditlog.FromEnvelope(env)
				if err != nil {
					t.Fatal(err)
				}
				if s == guardian.PlatformStream {
					recorded = append(recorded, e)
				}
			}
			if len(recorded) != 1 || recorded[0].Target != "audit_stream:"+stream || recorded[0].Context["kind"] != tt.wantKind ||
				recorded[0].Context["alert_event_id"] != alert.EventID {
				t.Fatalf("platform audit entries %+v, want the break of %s", recorded, stream)
			}

			// The damage is raised again at every check until someone acts.
			if again := c.check(t); len(again.Breaks) != 1 || again.Breaks[0].Kind != tt.wantKind {
				t.Fatalf("next check %+v, want the break again", again.Breaks)
			}
		})
	}
}

// TestScheduledCheckReadsOnlyNewEntries writes a 100,000-entry stream straight to Firestore,
// anchors it, appends 10 entries, and counts what the next check reads through the meter.
func TestScheduledCheckReadsOnlyNewEntries(t *testing.T) {
	ctx := context.Background()
	c, m := newChecker(t, true)
	const stream, n = "eng-big", 100_000
	ref := c.fs.Collection(store.AuditStreams).Doc(stream)
	bw := c.fs.BulkWriter(ctx)
	prev := auditlog.GenesisHash
	for seq := int64(1); seq <= n; seq++ {
		e := auditlog.Entry{EventID: fmt.Sprintf("seed-%d", seq), Seq: seq, Time: "2026-12-01T09:00:00Z", EventType: "decision",
			ActorID: "gov-1", ActorType: "human", Action: "approve", Target: "agent-1", Result: "approved",
			Context: map[string]string{}, ApprovalChain: []string{}, PrevHash: prev}
		h, err := auditlog.ChainHash(prev, e)
		if err != nil {
			t.Fatal(err)
		}
		e.Hash, prev = h, h
		if _, err := bw.Create(ref.Collection(store.AuditEntries).Doc(fmt.Sprintf("%020d", seq)), e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bw.Create(ref, map[string]any{"seq": int64(n), "hash": prev}); err != nil {
		t.Fatal(err)
	}
	bw.End()

	measure := func(t *testing.T) (guardian.CheckReport, int64) {
		t.Helper()
		before, err := m.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rep := c.check(t)
		after, err := m.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rep, meter.Diff(before, after).Counters["firestore.reads"]
	}
	first, firstReads := measure(t)
	if len(first.Breaks) != 0 || first.Anchor == "" || first.EntriesRead != n {
		t.Fatalf("first check %+v, want the whole stream walked once and anchored", first)
	}
	c.appendN(t, stream, 0, 10) // through the appender, after the seeded chain
	rep, reads := measure(t)
	if len(rep.Breaks) != 0 || rep.Anchor == "" {
		t.Fatalf("check %+v, want no break and a new anchor", rep)
	}
	// One head listed, the checkpointed entry, the 10 new ones.
	if rep.EntriesRead != 11 || reads < 11 || reads > 15 {
		t.Fatalf("check read %d entries, %d Firestore documents; want 11 entries and about 12 reads", rep.EntriesRead, reads)
	}
	t.Logf("100,000-entry stream: first check %d Firestore reads; after 10 appends %d reads (%d entries)", firstReads, reads, rep.EntriesRead)
}
