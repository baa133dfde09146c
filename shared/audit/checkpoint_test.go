package audit

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/store"
)

func TestSealAndOpenAnchor(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	a := Anchor{Time: "2026-12-01T10:00:00Z", Checkpoints: []Checkpoint{{Stream: "eng-1", Seq: 4, HeadHash: GenesisHash, Time: "2026-12-01T10:00:00Z"}}}
	doc, err := SealAnchor(key, a)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     []byte
		doc     []byte
		wantErr error
	}{
		{"as sealed", key, doc, nil},
		{"another key", bytes.Repeat([]byte("x"), 32), doc, ErrBadSignature},
		{"seq altered", key, bytes.Replace(doc, []byte(`"seq":4`), []byte(`"seq":3`), 1), ErrBadSignature},
		{"signature dropped", key, bytes.Replace(doc, []byte(`"alg":"HS256"`), []byte(`"alg":"none"`), 1), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if altered := !bytes.Equal(tt.doc, doc); altered == (tt.name == "as sealed" || tt.name == "another key") {
				t.Fatalf("document altered: %v", altered)
			}
			got, err := OpenAnchor(tt.key, tt.doc)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("OpenAnchor: %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if cp, ok := got.Checkpoint("eng-1"); !ok || cp.Seq != 4 || cp.HeadHash != GenesisHash {
					t.Fatalf("checkpoint %+v %v", cp, ok)
				}
			}
		})
	}
	if _, err := SealAnchor([]byte("short"), a); err == nil {
		t.Fatal("SealAnchor took a 5-byte key")
	}
}

// TestCheckSince anchors a 10-entry stream, changes it, and checks again from the anchor.
func TestCheckSince(t *testing.T) {
	ctx := context.Background()
	appendN := func(t *testing.T, app *Appender, stream string, from, n int) {
		t.Helper()
		for j := range n {
			if _, err := app.Append(ctx, auditEvent(t, stream, from+j)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name     string
		change   func(t *testing.T, app *Appender, s *firestore.DocumentRef)
		wantKind string // "" for no break
		wantSeq  int64  // the break's seq, or the new checkpoint's
		wantRead int    // entries read
	}{
		{"unchanged", func(*testing.T, *Appender, *firestore.DocumentRef) {}, "", 10, 1},
		{"grown by three", func(t *testing.T, app *Appender, s *firestore.DocumentRef) { appendN(t, app, s.ID, 10, 3) }, "", 13, 4},
		{"tail truncated", func(t *testing.T, _ *Appender, s *firestore.DocumentRef) {
			for _, seq := range []int64{9, 10} {
				if _, err := s.Collection(store.AuditEntries).Doc(seqID(seq)).Delete(ctx); err != nil {
					t.Fatal(err)
				}
			}
			setHead(t, s, 8)
		}, BreakShorter, 10, 0},
		{"last entry and head rewritten together", func(t *testing.T, _ *Appender, s *firestore.DocumentRef) {
			rewrite(t, s, 10)
			setHead(t, s, 10)
		}, BreakRewritten, 10, 1},
		{"checkpointed entry rewritten, head kept", func(t *testing.T, _ *Appender, s *firestore.DocumentRef) {
			rewrite(t, s, 10)
		}, BreakRewritten, 10, 1},
		{"stream deleted", func(t *testing.T, _ *Appender, s *firestore.DocumentRef) {
			if err := deleteStream(ctx, s); err != nil {
				t.Fatal(err)
			}
		}, BreakVanished, 10, 0},
		{"new entry altered", func(t *testing.T, app *Appender, s *firestore.DocumentRef) {
			appendN(t, app, s.ID, 10, 3)
			update(t, s.Collection(store.AuditEntries).Doc(seqID(12)), "result", "denied")
		}, BreakLink, 12, 3},
		{"first new entry linked elsewhere", func(t *testing.T, app *Appender, s *firestore.DocumentRef) {
			appendN(t, app, s.ID, 10, 2)
			update(t, s.Collection(store.AuditEntries).Doc(seqID(11)), "prev_hash", GenesisHash)
		}, BreakLink, 11, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A project of its own: the checks list every stream of the project.
			client := emulators.ForTest(t).Firestore(t)
			app := NewAppender(client)
			stream := "eng-anchor"
			ref := client.Collection(store.AuditStreams).Doc(stream)
			appendN(t, app, stream, 0, 10)
			first, err := CheckSince(ctx, client, Anchor{}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			cp, ok := first.Anchor.Checkpoint(stream)
			if !ok || cp.Seq != 10 || !first.Changed || hasBreak(first, stream) {
				t.Fatalf("first check: checkpoint %+v %v, changed %v, breaks %+v", cp, ok, first.Changed, first.Breaks)
			}
			tt.change(t, app, ref)
			res, err := CheckSince(ctx, client, first.Anchor, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var got *Break
			for _, b := range res.Breaks {
				if b.Stream == stream {
					got = &b
				}
			}
			after, _ := res.Anchor.Checkpoint(stream)
			if tt.wantKind == "" {
				if got != nil {
					t.Fatalf("break %+v, want none", *got)
				}
				if after.Seq != tt.wantSeq || res.Changed != (tt.wantSeq != 10) {
					t.Fatalf("checkpoint %+v changed %v, want seq %d", after, res.Changed, tt.wantSeq)
				}
			} else {
				if got == nil || got.Kind != tt.wantKind || got.Seq != tt.wantSeq {
					t.Fatalf("breaks %+v, want %s at seq %d", res.Breaks, tt.wantKind, tt.wantSeq)
				}
				if after != cp {
					t.Fatalf("checkpoint after a break %+v, want the previous one kept %+v", after, cp)
				}
			}
			if res.EntriesRead != tt.wantRead {
				t.Errorf("entries read %d, want %d", res.EntriesRead, tt.wantRead)
			}
		})
	}
}

func hasBreak(r CheckResult, stream string) bool {
	for _, b := range r.Breaks {
		if b.Stream == stream {
			return true
		}
	}
	return false
}

func setHead(t *testing.T, s *firestore.DocumentRef, seq int64) {
	t.Helper()
	snap, err := s.Collection(store.AuditEntries).Doc(seqID(seq)).Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := snap.DataTo(&e); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Set(context.Background(), head{Seq: seq, Hash: e.Hash}); err != nil {
		t.Fatal(err)
	}
}

// rewrite alters entry seq and recomputes its hash, so its own link still verifies.
func rewrite(t *testing.T, s *firestore.DocumentRef, seq int64) {
	t.Helper()
	ref := s.Collection(store.AuditEntries).Doc(seqID(seq))
	snap, err := ref.Get(context.Background())
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
	if _, err := ref.Set(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// deleteStream removes a stream's head, entries and index, as an admin could.
func deleteStream(ctx context.Context, s *firestore.DocumentRef) error {
	for _, coll := range []string{store.AuditEntries, store.AuditEventIndex} {
		refs, err := s.Collection(coll).DocumentRefs(ctx).GetAll()
		if err != nil {
			return err
		}
		for _, r := range refs {
			if _, err := r.Delete(ctx); err != nil {
				return err
			}
		}
	}
	_, err := s.Delete(ctx)
	return err
}
