package meter

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/infra/local/emulators"
)

// firestoreThroughMeter starts a meter's Firestore proxy in front of the test emulator and
// a real client that reaches it as it reaches an emulator: FIRESTORE_EMULATOR_HOST.
func firestoreThroughMeter(t *testing.T) (*Meter, *firestore.Client, *emulators.Env) {
	t.Helper()
	env := emulators.ForTest(t)
	m := New()
	p, err := m.Firestore("", env.FirestoreHost)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	t.Setenv("FIRESTORE_EMULATOR_HOST", p.Addr())
	c, err := firestore.NewClient(context.Background(), env.Project)
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return m, c, env
}

// billed is the part of a diff a cost model reads for Firestore.
var billed = []string{"firestore.reads", "firestore.reads.missing", "firestore.writes", "firestore.deletes"}

func TestFirestoreCountsWhatIsBilled(t *testing.T) {
	m, c, _ := firestoreThroughMeter(t)
	ctx := context.Background()
	items := c.Collection("items")

	cases := []struct {
		name string
		run  func(t *testing.T)
		want map[string]int64 // billed counters (absent = 0) and any calls named
	}{
		{"a batch of 4 writes", func(t *testing.T) {
			b := c.Batch() //nolint:staticcheck // a Commit of several writes is what is measured
			for _, id := range []string{"a", "b", "c", "d"} {
				b.Set(items.Doc(id), map[string]any{"n": 1})
			}
			if _, err := b.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"firestore.writes": 4, "firestore.calls.Commit": 1}},
		{"a bulk writer's set (BatchWrite)", func(t *testing.T) {
			bw := c.BulkWriter(ctx)
			if _, err := bw.Set(items.Doc("e"), map[string]any{"n": 2}); err != nil {
				t.Fatal(err)
			}
			bw.End()
		}, map[string]int64{"firestore.writes": 1, "firestore.calls.BatchWrite": 1}},
		{"3 gets", func(t *testing.T) {
			for _, id := range []string{"a", "b", "c"} {
				if _, err := items.Doc(id).Get(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}, map[string]int64{"firestore.reads": 3, "firestore.calls.BatchGetDocuments": 3}},
		{"a query returning 5 documents", func(t *testing.T) {
			docs, err := items.Documents(ctx).GetAll()
			if err != nil || len(docs) != 5 {
				t.Fatalf("query: %d documents, %v", len(docs), err)
			}
		}, map[string]int64{"firestore.reads": 5, "firestore.calls.RunQuery": 1}},
		{"a query returning nothing costs one read", func(t *testing.T) {
			docs, err := items.Where("n", ">", 100).Documents(ctx).GetAll()
			if err != nil || len(docs) != 0 {
				t.Fatalf("query: %d documents, %v", len(docs), err)
			}
		}, map[string]int64{"firestore.reads": 1}},
		{"a get of a missing document", func(t *testing.T) {
			if _, err := items.Doc("nope").Get(ctx); status.Code(err) != codes.NotFound {
				t.Fatalf("get: %v, want NotFound", err)
			}
		}, map[string]int64{"firestore.reads": 1, "firestore.reads.missing": 1}},
		{"a transaction reading 2 and writing 3", func(t *testing.T) {
			err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
				for _, id := range []string{"a", "b"} {
					if _, err := tx.Get(items.Doc(id)); err != nil {
						return err
					}
				}
				if err := tx.Set(c.Collection("other").Doc("x"), map[string]any{"k": 1}); err != nil {
					return err
				}
				if err := tx.Set(c.Collection("other").Doc("y"), map[string]any{"k": 2}); err != nil {
					return err
				}
				return tx.Update(items.Doc("a"), []firestore.Update{{Path: "n", Value: firestore.Increment(1)}})
			})
			if err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"firestore.reads": 2, "firestore.writes": 3, "firestore.calls.Commit": 1}},
		{"a delete", func(t *testing.T) {
			if _, err := items.Doc("e").Delete(ctx); err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"firestore.deletes": 1, "firestore.calls.Commit": 1}},
		{"a count of 4 documents is one read", func(t *testing.T) {
			res, err := items.NewAggregationQuery().WithCount("all").Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := res["all"]; n == nil {
				t.Fatalf("count: %v", res)
			}
		}, map[string]int64{"firestore.reads": 1, "firestore.calls.RunAggregationQuery": 1}},
		{"a listener's initial results", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			it := items.Snapshots(ctx)
			defer it.Stop()
			snap, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if snap.Size != 4 {
				t.Fatalf("listener: %d documents, want 4", snap.Size)
			}
		}, map[string]int64{"firestore.reads": 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, err := m.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t)
			after, err := m.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d := Diff(before, after)
			for _, k := range billed {
				if d.Get(k) != tc.want[k] {
					t.Errorf("%s = %d, want %d\n%s", k, d.Get(k), tc.want[k], d)
				}
			}
			for k, v := range tc.want {
				if d.Get(k) != v {
					t.Errorf("%s = %d, want %d\n%s", k, d.Get(k), v, d)
				}
			}
		})
	}
}

// TestFirestoreProxyForwardsErrorsAndListens checks that what the client sees through the
// proxy is the emulator's answer: a failed precondition keeps its code and writes nothing,
// and a listener keeps receiving changes.
func TestFirestoreProxyForwardsErrorsAndListens(t *testing.T) {
	m, c, _ := firestoreThroughMeter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	doc := c.Collection("l").Doc("one")
	if _, err := doc.Create(ctx, map[string]any{"v": 1}); err != nil {
		t.Fatal(err)
	}
	before, _ := m.Snapshot(ctx)
	if _, err := doc.Create(ctx, map[string]any{"v": 2}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second create: %v, want AlreadyExists", err)
	}
	after, _ := m.Snapshot(ctx)
	d := Diff(before, after)
	if d.Get("firestore.writes") != 0 || d.Get("firestore.errors.AlreadyExists") != 1 {
		t.Fatalf("a refused create: %s", d)
	}

	it := c.Collection("l").Snapshots(ctx)
	defer it.Stop()
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	before, _ = m.Snapshot(ctx)
	if _, err := doc.Set(ctx, map[string]any{"v": 3}); err != nil {
		t.Fatal(err)
	}
	for {
		snap, err := it.Next()
		if err == iterator.Done || err != nil {
			t.Fatalf("listener: %v", err)
		}
		if ds, _ := snap.Documents.GetAll(); len(ds) == 1 && ds[0].Data()["v"] == int64(3) {
			break
		}
	}
	after, _ = m.Snapshot(ctx)
	d = Diff(before, after)
	if d.Get("firestore.reads") != 1 || d.Get("firestore.writes") != 1 {
		t.Fatalf("one update seen by a listener: want 1 read and 1 write, got\n%s", d)
	}
}
