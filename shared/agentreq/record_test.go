package agentreq_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
)

type fixture struct {
	fs  *firestore.Client
	rec *agentreq.Recorder
	tap *emulators.Tap
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	env := emulators.ForTest(t)
	tap := env.Tap(t) // provisions every topic of infrastructure.yaml
	pub := events.NewPubSub(env.PubSub(t))
	t.Cleanup(pub.Close)
	fs := env.Firestore(t)
	return fixture{fs: fs, tap: tap, rec: &agentreq.Recorder{
		FS: fs, Collection: "test_verdicts", Publisher: pub, Actor: "genesis", Source: "//waooaw/test",
	}}
}

func (f fixture) request(t *testing.T, id, status string) {
	t.Helper()
	_, err := f.fs.Collection(agentreq.Requests).Doc(id).Set(context.Background(), agentreq.Request{
		RequestID: id, EngagementID: "eng-1", Status: status, Round: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func stageRecord(id string, outcome, status string) agentreq.Record {
	return agentreq.Record{
		Key: agentreq.StageKey(id, 2, 1), RequestID: id, EngagementID: "eng-1", Round: 1,
		At: "2026-12-01T10:00:00Z", Event: "stage", Action: agentreq.StepNames[2], Outcome: outcome,
		Reasons: []string{"section integrations is missing or empty"},
		Trace:   json.RawMessage(`{"table":"way_of_working"}`),
		// A caller's context is added; it cannot replace what the record itself says.
		AuditContext: map[string]string{"ai_model": "m-1", "request_id": "another"},
		Stage:        &agentreq.StageEntry{Stage: 2, Name: "way_of_working", Outcome: outcome, Reasons: []string{"gap"}, At: "2026-12-01T10:00:00Z", Round: 1},
		Status:       status,
		Answer:       map[string]any{"outcome": outcome},
	}
}

// TestRecordOnce: a retried call answers what was stored, writes nothing more, and publishes
// the same audit event id again.
func TestRecordOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.request(t, "req-1", agentreq.StatusRunning)

	first, err := f.rec.Record(ctx, stageRecord("req-1", "revise", agentreq.StatusNeedsRevision))
	if err != nil {
		t.Fatal(err)
	}
	// The retry carries another answer: the stored one must win.
	retry := stageRecord("req-1", "complete", agentreq.StatusRunning)
	second, err := f.rec.Record(ctx, retry)
	if err != nil {
		t.Fatal(err)
	}
	if !first.First || second.First {
		t.Errorf("First = %v, %v; want true, false", first.First, second.First)
	}
	if string(second.Answer) != string(first.Answer) || string(first.Answer) != `{"outcome":"revise"}` {
		t.Errorf("answers %s and %s; want the stored {\"outcome\":\"revise\"} twice", first.Answer, second.Answer)
	}
	req, err := agentreq.Get(ctx, f.fs, "req-1")
	if err != nil {
		t.Fatal(err)
	}
	if req.Compensations == nil {
		t.Error("compensations read back as nil; want [] (the API shows a list)")
	}
	if req.Status != agentreq.StatusNeedsRevision || len(req.Stages) != 1 || req.UpdatedAt != "2026-12-01T10:00:00Z" {
		t.Errorf("projection = status %s, %d stages, updated %s; want needs_revision, 1, the call's at", req.Status, len(req.Stages), req.UpdatedAt)
	}

	msgs := f.tap.Drain(t, time.Second)[events.TopicAuditEvents]
	if len(msgs) != 2 {
		t.Fatalf("%d audit events published, want 2 (the first and the retry's)", len(msgs))
	}
	var ids []string
	for _, m := range msgs {
		env, err := events.Decode(events.TopicAuditEvents, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.EventID)
		var p struct {
			Stream, Action, Result string
			Context                map[string]string
		}
		if err := json.Unmarshal(env.Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Stream != "eng-1" || p.Action != "stage_2_way_of_working" || p.Result != "revise" ||
			p.Context["trace"] != `{"table":"way_of_working"}` || p.Context["request_id"] != "req-1" || p.Context["ai_model"] != "m-1" {
			t.Errorf("audit data = %+v", p)
		}
		if env.Time != "2026-12-01T10:00:00Z" || env.CorrelationID != "req-1" {
			t.Errorf("envelope time %s correlation %s; want the call's at and the request id", env.Time, env.CorrelationID)
		}
	}
	if ids[0] != ids[1] || ids[0] != agentreq.EventID(agentreq.StageKey("req-1", 2, 1)) {
		t.Errorf("event ids %v; want the record key's id twice", ids)
	}
}

func TestRecordRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.request(t, "req-term", agentreq.StatusRejected)

	cases := []struct {
		name       string
		rec        agentreq.Record
		wantErr    error
		wantStatus string
	}{
		{name: "terminal status is kept", rec: stageRecord("req-term", "complete", agentreq.StatusRunning), wantStatus: agentreq.StatusRejected},
		{name: "unknown request", rec: stageRecord("req-none", "complete", agentreq.StatusRunning), wantErr: agentreq.ErrUnknownRequest},
		{name: "other engagement", rec: func() agentreq.Record {
			r := stageRecord("req-term", "complete", "")
			r.Key, r.EngagementID = "other-eng", "eng-2"
			return r
		}(), wantErr: agentreq.ErrUnknownRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.rec.Record(ctx, c.rec)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if c.wantStatus != "" {
				req, err := agentreq.Get(ctx, f.fs, c.rec.RequestID)
				if err != nil {
					t.Fatal(err)
				}
				if req.Status != c.wantStatus {
					t.Errorf("status %s, want %s", req.Status, c.wantStatus)
				}
			}
		})
	}
	if _, err := f.rec.Record(ctx, agentreq.Record{Key: "k"}); err == nil {
		t.Error("a record without request, engagement, event, action and at was accepted")
	}
}

// TestRecordAlsoAndConcurrency: the Also hook's writes commit with the record, and of many
// concurrent calls for one change exactly one records it.
func TestRecordAlsoAndConcurrency(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.request(t, "req-c", agentreq.StatusRunning)

	const n = 8
	var wg sync.WaitGroup
	results := make([]agentreq.Result, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := agentreq.Record{
				Key: agentreq.UndoKey("req-c", 4), RequestID: "req-c", EngagementID: "eng-1", At: "2026-12-02T10:00:00Z",
				Event: "undo", Action: "undo_stage_4_architecture_review", Outcome: "undone",
				Compensation: &agentreq.Compensation{Stage: 4, At: "2026-12-02T10:00:00Z"},
				Also: func(ctx context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
					rec.Answer = map[string]any{"undone": true, "compensations_before": len(req.Compensations)}
					return tx.Set(f.fs.Collection("test_side").Doc("req-c"), map[string]any{"released": true})
				},
			}
			results[i], errs[i] = f.rec.Record(ctx, rec)
		}()
	}
	wg.Wait()
	firsts := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if results[i].First {
			firsts++
		}
		if string(results[i].Answer) != `{"compensations_before":0,"undone":true}` {
			t.Errorf("call %d answered %s", i, results[i].Answer)
		}
	}
	if firsts != 1 {
		t.Errorf("%d calls recorded the change, want 1", firsts)
	}
	req, err := agentreq.Get(ctx, f.fs, "req-c")
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Stages) != 0 || req.Stages == nil {
		t.Errorf("stages %v; want an empty list, not nil", req.Stages)
	}
	if len(req.Compensations) != 1 || req.Compensations[0].Stage != 4 {
		t.Errorf("compensations %+v, want one of stage 4", req.Compensations)
	}
	if _, err := f.fs.Collection("test_side").Doc("req-c").Get(ctx); err != nil {
		t.Errorf("the Also hook's write is missing: %v", err)
	}
}

func TestIDs(t *testing.T) {
	cases := []struct{ got, prefix string }{
		{agentreq.ApprovalID("req-1", agentreq.KindBlocking, "deployment", 1), "apv-"},
		{agentreq.AgentID("req-1"), "agt-"},
		{agentreq.EventID("req-1_1_1"), "ar-"},
	}
	for _, c := range cases {
		if len(c.got) < len(c.prefix)+20 || c.got[:len(c.prefix)] != c.prefix {
			t.Errorf("id %q: want prefix %s and at least 20 hex", c.got, c.prefix)
		}
	}
	if agentreq.ApprovalID("req-1", agentreq.KindBlocking, "deployment", 1) == agentreq.ApprovalID("req-1", agentreq.KindBlocking, "deployment", 2) {
		t.Error("approval ids of two rounds are equal")
	}
	if !agentreq.Terminal(agentreq.StatusVetoed) || agentreq.Terminal(agentreq.StatusVetoWindow) {
		t.Error("Terminal: vetoed must be final, veto_window must not")
	}
}
