package auditor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/cloudevents/sdk-go/v2/event"

	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/store"
)

// auditEvent builds a schema-valid audit_events envelope for stream.
func auditEvent(t testing.TB, stream string, i int) events.Envelope {
	t.Helper()
	e, err := events.New("waooaw.audit.recorded", "//test/auditor", "system:test", map[string]any{
		"stream": stream, "event_type": "decision", "actor_id": fmt.Sprintf("gov-%d", i%7),
		"actor_type": "human", "action": "approve", "target": fmt.Sprintf("agent-%d", i),
		"context": map[string]string{"i": strconv.Itoa(i)}, "approval_chain": []string{"genesis"}, "result": "approved",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// pushCloudEvent wraps data as functions-framework-go delivers a Pub/Sub push.
func pushCloudEvent(t *testing.T, data []byte) event.Event {
	t.Helper()
	ce := event.New()
	ce.SetID("m-" + events.NewID())
	ce.SetSource("//pubsub.googleapis.com/projects/test/topics/audit_events")
	ce.SetType("google.cloud.pubsub.topic.v1.messagePublished")
	if err := ce.SetData(event.ApplicationJSON, map[string]any{
		"message":      map[string]any{"data": data, "messageId": ce.ID()},
		"subscription": "projects/test/subscriptions/auditor-audit_events",
	}); err != nil {
		t.Fatal(err)
	}
	return ce
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the log records written since the last call.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, m)
	}
	s.b.Reset()
	return out
}

// The handler in memory, as golang-samples tests functions, but against the real Firestore
// emulator: every outcome Pub/Sub can see.
func TestHandleOutcomes(t *testing.T) {
	env := emulators.ForTest(t)
	client := env.Firestore(t)
	var logs syncBuffer
	h := &Handler{App: audit.NewAppender(client), Log: logging.New(&logs, nil)}

	// A client whose Firestore is down: every append fails in a way a retry could fix. The
	// library dials FIRESTORE_EMULATOR_HOST (lazily) when the client is made, so point it at
	// a port nobody listens on for that moment only.
	port, err := emulators.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	os.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:"+strconv.Itoa(port))
	dead, err := firestore.NewClient(context.Background(), env.Project)
	os.Setenv("FIRESTORE_EMULATOR_HOST", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	down := &Handler{App: audit.NewAppender(dead, audit.WithCommitTimeout(time.Second)), Log: logging.New(&logs, nil)}

	valid := auditEvent(t, "handle", 1)
	validData, err := events.Encode(events.TopicAuditEvents, valid)
	if err != nil {
		t.Fatal(err)
	}
	slash := auditEvent(t, "a/b", 2)
	slashData, err := events.Encode(events.TopicAuditEvents, slash)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		h        *Handler
		data     []byte
		poison   bool
		retry    bool   // an error that is not poison
		severity string // of the last log record; "" for none
		seq      int64  // entries in stream "handle" afterwards
	}{
		{"valid event appended", h, validData, false, false, "", 1},
		{"redelivery changes nothing", h, validData, false, false, "INFO", 1},
		{"not JSON", h, []byte(`{"event_id":`), true, false, "ERROR", 1},
		{"schema violation", h, []byte(`{"event_id":"x","type":"t"}`), true, false, "ERROR", 1},
		{"unusable stream", h, slashData, true, false, "ERROR", 1},
		{"firestore down", down, validData, false, true, "WARNING", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Generous: the first transaction on a just-started emulator can take seconds.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tt.h.Handle(ctx, pushCloudEvent(t, tt.data))
			switch {
			case tt.poison && !errors.Is(err, events.ErrPoison):
				t.Errorf("err = %v, want poison", err)
			case tt.retry && (err == nil || errors.Is(err, events.ErrPoison)):
				t.Errorf("err = %v, want a retryable error", err)
			case !tt.poison && !tt.retry && err != nil:
				t.Errorf("err = %v", err)
			}
			lines := logs.lines(t)
			switch {
			case tt.severity == "" && len(lines) != 0:
				t.Errorf("log = %v, want nothing at INFO and above", lines)
			case tt.severity != "" && (len(lines) == 0 || lines[len(lines)-1]["severity"] != tt.severity || lines[len(lines)-1]["message"] == nil):
				t.Errorf("log = %v, want a record with severity %s", lines, tt.severity)
			}
			rep, err := audit.Verify(context.Background(), client, "handle")
			if err != nil || !rep.OK || rep.Entries != int(tt.seq) {
				t.Errorf("stream after: %+v, %v; want ok with %d entries", rep, err, tt.seq)
			}
		})
	}
}

// pushServer is an httptest server in front of the real functions-framework server for
// Auditor. functions-framework-go v1.9.2 does not export the handler it builds (its
// initServer is internal), so the framework serves on its own port via StartHostPort, and
// this proxy records every push: how often each message came, and what the function said.
type pushServer struct {
	URL       string
	FSProject string // the Firestore project the function writes to
	// Own is the function's own project (FSProject), where it publishes its alerts.
	Own *emulators.Env
	// FSDatabase is the audit log's database the function writes to: a named one, as
	// deployed, so a function that ignored WAOOAW_AUDIT_DATABASE would leave it empty.
	FSDatabase string

	mu       sync.Mutex
	attempts map[string]int             // message id -> pushes
	handled  map[string]map[string]bool // subscription -> message ids the function accepted
	failed   map[string]int             // subscription -> pushes the function refused
}

// testAuditDatabase is the named database the function under test keeps the log in.
const testAuditDatabase = "audit"

var (
	serverOnce sync.Once
	server     *pushServer
)

// startAuditor serves Auditor once per test binary. The function reads its config from the
// environment on the first event, so all tests share one Firestore project; each test has
// its own Pub/Sub project (so its own subscription) and its own stream names.
func startAuditor(t testing.TB) *pushServer {
	t.Helper()
	serverOnce.Do(func() {
		fsEnv := emulators.ForTest(t)
		os.Setenv("GOOGLE_CLOUD_PROJECT", fsEnv.Project)
		os.Setenv("FUNCTION_TARGET", "Auditor")
		os.Setenv(store.EnvAuditDatabase, testAuditDatabase)
		// The function publishes its alerts in its own project: give it the topics.
		fsEnv.Provision(t, nil)
		port, err := emulators.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		go func() {
			if err := funcframework.StartHostPort("127.0.0.1", strconv.Itoa(port)); err != nil {
				fmt.Fprintf(os.Stderr, "funcframework: %v\n", err)
			}
		}()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("functions framework did not listen on %s: %v", addr, err)
			}
		}
		target, _ := url.Parse("http://" + addr)
		proxy := httputil.NewSingleHostReverseProxy(target)
		ps := &pushServer{FSProject: fsEnv.Project, Own: fsEnv, FSDatabase: testAuditDatabase, attempts: map[string]int{}, handled: map[string]map[string]bool{}, failed: map[string]int{}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var push struct {
				Message struct {
					ID string `json:"messageId"`
				} `json:"message"`
				Subscription string `json:"subscription"`
			}
			_ = json.Unmarshal(body, &push) // the function judges the body; this only counts
			rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			proxy.ServeHTTP(rec, r)
			ps.mu.Lock()
			defer ps.mu.Unlock()
			ps.attempts[push.Message.ID]++
			if rec.code >= 300 {
				ps.failed[push.Subscription]++
				return
			}
			if ps.handled[push.Subscription] == nil {
				ps.handled[push.Subscription] = map[string]bool{}
			}
			ps.handled[push.Subscription][push.Message.ID] = true
		}))
		ps.URL = srv.URL
		server = ps
	})
	if server == nil {
		t.Fatal("auditor server did not start")
	}
	return server
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// counts returns how many distinct messages of a subscription the function accepted (a
// redelivery of an accepted message does not count again), and how many pushes it refused.
func (ps *pushServer) counts(sub string) (handled, failed int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.handled[sub]), ps.failed[sub]
}

func (ps *pushServer) attemptsOf(id string) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.attempts[id]
}

// waitFor polls cond until it holds; the deadline only bounds a hung run.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func auditSub(env *emulators.Env) (infraspec.Subscription, string) {
	s := infraspec.Subscription{Name: "auditor-audit_events"}
	return s, "projects/" + env.Project + "/subscriptions/" + s.Name
}

// (a) 1,000 audit events over 5 streams through the real Pub/Sub emulator: pushed to the
// functions-framework server, 10% of them published twice, all in shuffled order.
func TestPushThousandEventsFiveStreams(t *testing.T) {
	ps := startAuditor(t)
	env := emulators.ForTest(t)
	env.Provision(t, map[string]string{"auditor": ps.URL})
	_, subPath := auditSub(env)
	fs, err := firestore.NewClientWithDatabase(context.Background(), ps.FSProject, ps.FSDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()

	const perStream, nStreams = 200, 5
	var streams []string
	for i := range nStreams {
		streams = append(streams, fmt.Sprintf("%s-s%d", env.Project, i))
	}
	var distinct []events.Envelope
	for i := range perStream * nStreams {
		distinct = append(distinct, auditEvent(t, streams[i%nStreams], i))
	}
	publish := append([]events.Envelope(nil), distinct...)
	for i := 0; i < len(distinct); i += 10 {
		publish = append(publish, distinct[i])
	}
	rand.Shuffle(len(publish), func(i, j int) { publish[i], publish[j] = publish[j], publish[i] })

	pub := events.NewPubSub(env.PubSub(t))
	defer pub.Close()
	ctx := context.Background()
	publishAll(t, pub, publish)

	waitFor(t, "every publication to be handled", 3*time.Minute, func() bool {
		ok, _ := ps.counts(subPath)
		return ok >= len(publish)
	})
	// Failed pushes are not asserted: on a loaded machine a push can outlive its ack deadline
	// and be retried, which is at-least-once delivery doing its job. What must hold is below.
	if _, failed := ps.counts(subPath); failed != 0 {
		t.Logf("%d pushes failed and were retried", failed)
	}

	want := map[string]map[string]bool{}
	for _, e := range distinct {
		s, _, _ := audit.FromEnvelope(e)
		if want[s] == nil {
			want[s] = map[string]bool{}
		}
		want[s][e.EventID] = true
	}
	for _, s := range streams {
		docs, err := fs.Collection(store.AuditStreams).Doc(s).Collection(store.AuditEntries).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for i, d := range docs {
			var e audit.Entry
			if err := d.DataTo(&e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(i+1) {
				t.Fatalf("%s: entry %d has seq %d: gap or disorder", s, i, e.Seq)
			}
			if got[e.EventID] {
				t.Errorf("%s: event %s appended twice", s, e.EventID)
			}
			got[e.EventID] = true
		}
		if len(got) != len(want[s]) {
			t.Errorf("%s: %d entries, want %d distinct events", s, len(got), len(want[s]))
		}
		for id := range want[s] {
			if !got[id] {
				t.Errorf("%s: event %s missing", s, id)
			}
		}
		rep, err := audit.Verify(ctx, fs, s)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.Entries != perStream {
			t.Errorf("%s: verify %+v, want ok with %d entries", s, rep, perStream)
		}
	}
}

// (c) Poison messages are refused on every attempt, and after the fifth the dead-letter
// policy moves them to the dead-letter topic; the chain they name is untouched.
func TestPoisonGoesToDeadLetter(t *testing.T) {
	ps := startAuditor(t)
	env := emulators.ForTest(t)
	env.Provision(t, map[string]string{"auditor": ps.URL})
	sub, _ := auditSub(env)
	client := env.PubSub(t)
	fs, err := firestore.NewClientWithDatabase(context.Background(), ps.FSProject, ps.FSDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	ctx := context.Background()

	// A stream with some history, which the poison message names. The history is appended
	// directly, so the poison message is the only one the subscription ever carries (see
	// below for why that matters).
	stream := env.Project + "-poisoned"
	app := audit.NewAppender(fs)
	for i := range 3 {
		if _, err := app.Append(ctx, auditEvent(t, stream, i)); err != nil {
			t.Fatal(err)
		}
	}
	before, err := audit.Verify(ctx, fs, stream)
	if err != nil || !before.OK || before.Entries != 3 {
		t.Fatalf("before: %+v, %v", before, err)
	}

	// Schema-valid (the emulator enforces the topic's Avro schema, so this reaches the
	// function) but without an event id: no retry can make it appendable. It is alone on its
	// subscription: with two failing pushes outstanding on one subscription, the emulator
	// (0.8.20) stops pushing after three attempts each and never dead-letters either.
	poisoned := auditEvent(t, stream, 10)
	poisoned.EventID = ""
	data, err := events.Encode(events.TopicAuditEvents, poisoned)
	if err != nil {
		t.Fatal(err)
	}
	raw := client.Publisher(events.TopicAuditEvents)
	defer raw.Stop()
	id, err := raw.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Read the dead-letter topic back through the hold subscription made by Provision.
	var dead *pubsub.Message
	var mu sync.Mutex
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = client.Subscriber(emulators.DeadLetterHold(sub)).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		if bytes.Equal(m.Data, data) { // the dead-letter copy has a message id of its own
			dead = m
			cancel()
		} else {
			t.Errorf("unexpected dead letter %q", m.Data)
		}
	})
	if err != nil && rctx.Err() == nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if dead == nil {
		t.Fatal("poison message not dead-lettered")
	}
	if n := ps.attemptsOf(id); n != 5 {
		t.Errorf("pushed %d times before dead-lettering, want 5", n)
	}
	if got := dead.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"]; got != "5" {
		t.Errorf("dead letter says %q delivery attempts, want 5 (attributes %v)", got, dead.Attributes)
	}

	after, err := audit.Verify(ctx, fs, stream)
	if err != nil || !after.OK || after.Entries != before.Entries || after.HeadHash != before.HeadHash {
		t.Errorf("chain changed: before %+v, after %+v (%v)", before, after, err)
	}
}

// withData returns e with one field of its data replaced: the same event id, other content.
func withData(t testing.TB, e events.Envelope, field string, v any) events.Envelope {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatal(err)
	}
	m[field] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	e.Data = b
	return e
}

// An event id the stream holds, delivered again: with the same content it is acknowledged
// quietly; with other content it is refused as poison on every attempt, logged at CRITICAL
// with both content hashes, and alerted on slo_breach under one alert id.
func TestHandleReusedID(t *testing.T) {
	env := emulators.ForTest(t)
	env.Provision(t, nil)
	tap := env.Tap(t, events.TopicSLOBreach)
	client := env.Firestore(t)
	alerts := events.NewPubSub(env.PubSub(t))
	t.Cleanup(alerts.Close)
	var logs syncBuffer
	h := &Handler{App: audit.NewAppender(client), Alerts: alerts, Log: logging.New(&logs, nil)}
	ctx := context.Background()

	const stream = "reused"
	orig := auditEvent(t, stream, 1)
	forged := withData(t, orig, "result", "denied")
	encode := func(e events.Envelope) []byte {
		b, err := events.Encode(events.TopicAuditEvents, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if err := h.Handle(ctx, pushCloudEvent(t, encode(orig))); err != nil {
		t.Fatal(err)
	}
	logs.lines(t)
	before, err := audit.Verify(ctx, client, stream)
	if err != nil || !before.OK || before.Entries != 1 {
		t.Fatalf("before: %+v, %v", before, err)
	}
	_, oe, _ := audit.FromEnvelope(orig)
	_, fe, _ := audit.FromEnvelope(forged)
	stored, _ := audit.ContentHash(oe)
	refused, _ := audit.ContentHash(fe)
	if stored == refused {
		t.Fatal("the forged event has the genuine one's content")
	}

	tests := []struct {
		name       string
		e          events.Envelope
		poison     bool
		severities []string // of the log records, in order
	}{
		{"redelivery with the same content", orig, false, []string{"INFO"}},
		{"same id, other content", forged, true, []string{"CRITICAL", "ERROR"}},
		{"same id, other content, second attempt", forged, true, []string{"CRITICAL", "ERROR"}},
		{"same id, other time", func() events.Envelope { e := orig; e.Time = "2030-01-01T00:00:00Z"; return e }(), true, []string{"CRITICAL", "ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.Handle(ctx, pushCloudEvent(t, encode(tt.e)))
			if tt.poison != errors.Is(err, events.ErrPoison) || (!tt.poison && err != nil) {
				t.Fatalf("err = %v, want poison %v", err, tt.poison)
			}
			if tt.poison && !errors.Is(err, audit.ErrConflict) {
				t.Errorf("err = %v, want it to wrap audit.ErrConflict", err)
			}
			lines := logs.lines(t)
			var got []string
			for _, l := range lines {
				got = append(got, fmt.Sprint(l["severity"]))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.severities) {
				t.Fatalf("log severities %v, want %v (%v)", got, tt.severities, lines)
			}
			if tt.poison {
				c := lines[0]
				if c["event_id"] != orig.EventID || c["stream"] != stream || c["stored_content"] != stored ||
					c["refused_content"] == stored || c["refused_content"] == "" || c["seq"] != 1.0 {
					t.Errorf("critical record %v, want event %s, stream %s, seq 1, stored content %s and the refused one", c, orig.EventID, stream, stored)
				}
				if tt.e.Time == orig.Time && c["refused_content"] != refused {
					t.Errorf("refused content %v, want %s", c["refused_content"], refused)
				}
			}
			after, err := audit.Verify(ctx, client, stream)
			if err != nil || !after.OK || after.Entries != 1 || after.HeadHash != before.HeadHash {
				t.Errorf("chain changed: %+v, %v", after, err)
			}
		})
	}

	// Three refused deliveries, two of them the same forged content: two alert ids.
	msgs := tap.Drain(t, 2*time.Second)[events.TopicSLOBreach]
	ids := map[string]int{}
	for _, m := range msgs {
		var a struct {
			EventID     string `json:"event_id"`
			CausationID string `json:"causation_id"`
			Data        struct {
				Service      string  `json:"service"`
				EngagementID string  `json:"engagement_id"`
				SLO          string  `json:"slo"`
				Severity     string  `json:"severity"`
				Observed     float64 `json:"observed"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		ids[a.EventID]++
		if a.Data.Service != AlertService || a.Data.EngagementID != stream || a.Data.SLO != AlertSLO ||
			a.Data.Severity != "critical" || a.Data.Observed != 1 || a.CausationID != orig.EventID {
			t.Errorf("alert %s", m.Data)
		}
	}
	if len(msgs) != 3 || len(ids) != 2 {
		t.Errorf("%d alerts with ids %v; want 3 with 2 distinct ids", len(msgs), ids)
	}
}

// A reused event id with other content, through the real emulators: the first event is
// appended, the second, with the same id, is pushed 5 times, refused each time, and
// dead-lettered; the chain, the entry and the count are as before, and the alert reached
// slo_breach.
func TestReusedIDGoesToDeadLetter(t *testing.T) {
	ps := startAuditor(t)
	env := emulators.ForTest(t)
	env.Provision(t, map[string]string{"auditor": ps.URL})
	sub, subPath := auditSub(env)
	tap := ps.Own.Tap(t, events.TopicSLOBreach)
	client := env.PubSub(t)
	fs, err := firestore.NewClientWithDatabase(context.Background(), ps.FSProject, ps.FSDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	ctx := context.Background()

	stream := env.Project + "-reused"
	orig := auditEvent(t, stream, 1)
	forged := withData(t, orig, "target", "agent-somebody-else")
	raw := client.Publisher(events.TopicAuditEvents)
	defer raw.Stop()
	publish := func(e events.Envelope) (string, []byte) {
		data, err := events.Encode(events.TopicAuditEvents, e)
		if err != nil {
			t.Fatal(err)
		}
		id, err := raw.Publish(ctx, &pubsub.Message{Data: data}).Get(ctx)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return id, data
	}

	// The genuine event first, alone, and appended before the forged one is sent: two
	// failing pushes at once would trip the emulator (see TestPoisonGoesToDeadLetter).
	publish(orig)
	waitFor(t, "the genuine event to be appended", time.Minute, func() bool { ok, _ := ps.counts(subPath); return ok == 1 })
	before, err := audit.Verify(ctx, fs, stream)
	if err != nil || !before.OK || before.Entries != 1 {
		t.Fatalf("before: %+v, %v", before, err)
	}
	entryRef := fs.Collection(store.AuditStreams).Doc(stream).Collection(store.AuditEntries).Doc(fmt.Sprintf("%020d", 1))
	snap, err := entryRef.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entryBefore := snap.Data()

	id, data := publish(forged)
	var dead *pubsub.Message
	var mu sync.Mutex
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = client.Subscriber(emulators.DeadLetterHold(sub)).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		mu.Lock()
		defer mu.Unlock()
		if bytes.Equal(m.Data, data) {
			dead = m
			cancel()
		} else {
			t.Errorf("unexpected dead letter %q", m.Data)
		}
	})
	if err != nil && rctx.Err() == nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if dead == nil {
		t.Fatal("forged event not dead-lettered")
	}
	if n := ps.attemptsOf(id); n != 5 {
		t.Errorf("pushed %d times before dead-lettering, want 5", n)
	}

	after, err := audit.Verify(ctx, fs, stream)
	if err != nil || !after.OK || after.Entries != before.Entries || after.HeadHash != before.HeadHash {
		t.Errorf("chain changed: before %+v, after %+v (%v)", before, after, err)
	}
	snap, err = entryRef.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(snap.Data()) != fmt.Sprint(entryBefore) || snap.Data()["target"] != "agent-1" {
		t.Errorf("entry changed: %v, was %v", snap.Data(), entryBefore)
	}
	// One alert per attempt, all under one id (delivery is at least once, so not exactly 5).
	n, ids := 0, map[string]bool{}
	for _, m := range tap.Drain(t, 2*time.Second)[events.TopicSLOBreach] {
		var a struct {
			EventID      string `json:"event_id"`
			EngagementID string `json:"engagement_id"`
		}
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatal(err)
		}
		if a.EngagementID == stream {
			n++
			ids[a.EventID] = true
		}
	}
	if n < 5 || len(ids) != 1 {
		t.Errorf("%d alerts for the stream on slo_breach under %d ids, want one per attempt (5) under one id", n, len(ids))
	}
}

// BenchmarkPushEndToEnd measures events/s from publishing to the last push handled, through
// the Pub/Sub emulator, the functions framework and the Firestore emulator, over 5 streams.
// The emulator's push delivery, not the appender, sets this figure.
func BenchmarkPushEndToEnd(b *testing.B) {
	ps := startAuditor(b)
	env := emulators.ForTest(b)
	env.Provision(b, map[string]string{"auditor": ps.URL})
	_, subPath := auditSub(env)
	pub := events.NewPubSub(env.PubSub(b))
	defer pub.Close()
	evs := make([]events.Envelope, b.N)
	for i := range evs {
		evs[i] = auditEvent(b, fmt.Sprintf("%s-s%d", env.Project, i%5), i)
	}
	base, _ := ps.counts(subPath)
	b.ResetTimer()
	start := time.Now()
	publishAll(b, pub, evs)
	waitFor(b, "every push", 5*time.Minute, func() bool { ok, _ := ps.counts(subPath); return ok-base >= b.N })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// publishAll publishes evs to audit_events from 16 goroutines, as concurrent producers would.
func publishAll(tb testing.TB, pub *events.PubSub, evs []events.Envelope) {
	tb.Helper()
	ctx := context.Background()
	work := make(chan events.Envelope)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for e := range work {
				if _, err := pub.Publish(ctx, events.TopicAuditEvents, e); err != nil {
					tb.Errorf("publish: %v", err)
				}
			}
		})
	}
	for _, e := range evs {
		work <- e
	}
	close(work)
	wg.Wait()
}
