package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/workflowexec"
)

const engagement = "eng-1"

// harness is a registry on loopback, wired to the real Firestore and Pub/Sub emulators in
// a fresh project whose topics all have a tap, delivering callbacks to an in-process
// Workflows emulator on a virtual clock.
type harness struct {
	env  *emulators.Env
	fs   *firestore.Client
	tap  *emulators.Tap
	wf   *workflowstest.Emulator
	url  string
	flow string // the deploy workflow (deployWorkflow)
	pub  *events.PubSub
	seq  atomic.Int64
}

// failing makes the next n callbacks fail before they reach the emulator, as a network
// error would; the rest go through the real client.
type failing struct {
	registry.Callbacks
	n atomic.Int64
}

func (f *failing) Callback(ctx context.Context, url string, body any) error {
	if f.n.Add(-1) >= 0 {
		return fmt.Errorf("callback %s: connection refused", url)
	}
	return f.Callbacks.Callback(ctx, url, body)
}

type harnessOption func(o *registry.Options, pushed *bool)

// pushedHealth makes the Pub/Sub emulator push health_events to the registry.
func pushedHealth() harnessOption { return func(_ *registry.Options, pushed *bool) { *pushed = true } }

// failFirst makes the first n callbacks fail.
func failFirst(n int) harnessOption {
	return func(o *registry.Options, _ *bool) {
		f := &failing{Callbacks: o.Callbacks}
		f.n.Store(int64(n))
		o.Callbacks = f
	}
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{env: emulators.ForTest(t), wf: workflowstest.New(t)}
	h.fs = h.env.Firestore(t)
	pub := registry.NewPublisher(h.env.PubSub(t))
	t.Cleanup(pub.Close)
	h.pub = pub
	wfc, err := workflowexec.New(context.Background(), h.wf.URL())
	if err != nil {
		t.Fatal(err)
	}
	o := registry.Options{Firestore: h.fs, Publisher: pub, Callbacks: wfc, Logger: logging.New(io.Discard, nil)}
	if testing.Verbose() {
		o.Logger = logging.New(os.Stderr, &logging.Options{Project: h.env.Project})
	}
	pushed := false
	for _, opt := range opts {
		opt(&o, &pushed)
	}
	s, err := registry.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	if pushed {
		// registry-health_events pushes to this server, as the local stack provisions it.
		h.env.Provision(t, map[string]string{"registry": h.url})
	}
	h.tap = h.env.Tap(t) // provisions what is still missing, with pull subscriptions
	h.flow = h.wf.Deploy("deploy", deployWorkflow)
	return h
}

// deployWorkflow stands in for agent_creation's stage 7: it creates the health callback,
// hands it to the registry's deploy call and awaits it. It then waits 60 s more for a
// second delivery, so a test sees one if it comes.
const deployWorkflow = `
main:
  params: [args]
  steps:
    - health_callback:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: callback
    - stage_7_deploy:
        call: http.post
        args:
          url: ${args.registry + "/v1/stages/deploy"}
          body:
            request_id: ${args.request_id}
            engagement_id: ${args.engagement_id}
            round: 1
            at: ${time.format(sys.now())}
            health_callback: ${callback.url}
        result: deployed
    - only_await_when_asked:
        switch:
          - condition: ${not(args.await)}
            return: ${deployed.body}
    - await_health:
        call: events.await_callback
        args:
          callback: ${callback}
          timeout: 1800
        result: health
    - await_second:
        try:
          call: events.await_callback
          args:
            callback: ${callback}
            timeout: 60
          result: second
        except:
          as: e
          steps:
            - only_timeout:
                switch:
                  - condition: ${not("TimeoutError" in e.tags)}
                    raise: ${e}
            - none:
                assign:
                  - second: null
    - done:
        return:
          deployed: ${deployed.body}
          health: ${health.http_request.body}
          second: ${second}
`

// request creates an agent request as the gateway would, in round 1, running.
func (h *harness) request(t testing.TB) string {
	t.Helper()
	id := fmt.Sprintf("req-%d-%d", time.Now().UnixNano()%1_000_000, h.seq.Add(1))
	_, err := h.fs.Collection(agentreq.Requests).Doc(id).Set(context.Background(), agentreq.Request{
		RequestID: id, EngagementID: engagement, Status: agentreq.StatusRunning, Round: 1,
		RequestedBy: "user:alice", CreatedAt: "2026-12-01T10:00:00Z", UpdatedAt: "2026-12-01T10:00:00Z",
		Spec: map[string]any{"agent_name": "Claims helper " + id},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// deploy runs the deploy workflow for a new request; with await, the execution is left
// waiting for its health callback. It returns the request, its agent and the execution.
func (h *harness) deploy(t testing.TB, await bool) (req, agent, execution string) {
	t.Helper()
	req = h.request(t)
	ex := h.wf.Run(h.flow, map[string]any{"registry": h.url, "request_id": req, "engagement_id": engagement, "await": await})
	if await && ex.State != "ACTIVE" {
		t.Fatalf("deploy workflow is %s, not waiting: %+v", ex.State, ex.Error)
	}
	if !await && ex.State != "SUCCEEDED" {
		t.Fatalf("deploy workflow is %s: %+v", ex.State, ex.Error)
	}
	return req, agentreq.AgentID(req), ex.Name
}

type answer struct {
	status int
	raw    []byte
	errMsg string
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.raw, v); err != nil {
		t.Fatalf("answer %s: %v", a.raw, err)
	}
}

func (h *harness) do(t testing.TB, method, path string, body any) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q: %s", method, path, ct, raw)
	}
	a := answer{status: resp.StatusCode, raw: raw}
	if resp.StatusCode >= 400 {
		var eb struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code != resp.StatusCode || eb.Error.Message == "" {
			t.Fatalf("%s %s: error body %s does not match status %d", method, path, raw, resp.StatusCode)
		}
		a.errMsg = eb.Error.Message
	}
	return a
}

func (h *harness) post(t testing.TB, path string, body any) answer {
	t.Helper()
	return h.do(t, http.MethodPost, path, body)
}

// report is a health event as the gateway publishes it.
func report(agent, engagement, status, observedAt string) events.Envelope {
	data, _ := json.Marshal(registry.Report{AgentID: agent, EngagementID: engagement, Status: status,
		CheckType: "http", ObservedAt: observedAt})
	id := events.NewID()
	return events.Envelope{EventID: id, Type: "waooaw.health.reported", Source: "//waooaw/gateway",
		Time: observedAt, CorrelationID: id, Actor: "client:dev-client", AgentID: agent, EngagementID: engagement, Data: data}
}

// push delivers env to the registry as a Pub/Sub push subscription does.
func (h *harness) push(t testing.TB, env events.Envelope) answer {
	t.Helper()
	data, err := events.Encode(events.TopicHealthEvents, env)
	if err != nil {
		t.Fatal(err)
	}
	return h.pushData(t, data)
}

func (h *harness) pushData(t testing.TB, data []byte) answer {
	t.Helper()
	var p registry.Push
	p.Message.Data = data
	p.Message.MessageID = events.NewID()
	p.Message.PublishTime = time.Now().UTC().Format(time.RFC3339Nano)
	p.Message.Attributes = map[string]string{"ce-type": "waooaw.health.reported"}
	p.Subscription = "projects/" + h.env.Project + "/subscriptions/registry-health_events"
	return h.post(t, "/projects/"+h.env.Project+"/topics/health_events", p)
}

// pushOK pushes env and returns the outcome, failing unless it was acknowledged.
func (h *harness) pushOK(t testing.TB, env events.Envelope) string {
	t.Helper()
	a := h.push(t, env)
	if a.status != http.StatusOK {
		t.Fatalf("push %s: %d %s", env.EventID, a.status, a.raw)
	}
	var pa registry.PushAnswer
	a.decode(t, &pa)
	h.wf.Service.WaitIdle()
	return pa.Outcome
}

// agent reads GET /v1/agents/{id} and checks that replaying its events gives its projection.
func (h *harness) agent(t testing.TB, id string) registry.AgentView {
	t.Helper()
	a := h.do(t, http.MethodGet, "/v1/agents/"+id, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET agent %s: %d %s", id, a.status, a.raw)
	}
	var v registry.AgentView
	a.decode(t, &v)
	// The view is one moment's: its events replay into its agent (the callback URL hidden).
	if replayed, err := registry.Replay(v.Events); err != nil || replayed != v.Agent {
		t.Errorf("GET agent %s: replayed events give %+v (%v); the answer is %+v", id, replayed, err, v.Agent)
	}
	// The stored documents, read in one transaction, hold the URL too.
	var stored registry.Agent
	var evs []registry.Event
	err := h.fs.RunTransaction(context.Background(), func(ctx context.Context, tx *firestore.Transaction) error {
		ref := h.fs.Collection(registry.Collection).Doc(id)
		snap, err := tx.Get(ref)
		if err != nil {
			return err
		}
		if err := snap.DataTo(&stored); err != nil {
			return err
		}
		snaps, err := tx.Documents(ref.Collection(registry.EventsCollection).OrderBy("seq", firestore.Asc)).GetAll()
		if err != nil {
			return err
		}
		evs = evs[:0]
		for _, s := range snaps {
			var e registry.Event
			if err := s.DataTo(&e); err != nil {
				return err
			}
			if want := fmt.Sprintf("%020d", e.Seq); s.Ref.ID != want {
				return fmt.Errorf("event %d stored as %s, want %s", e.Seq, s.Ref.ID, want)
			}
			evs = append(evs, e)
		}
		return nil
	}, firestore.ReadOnly)
	if err != nil {
		t.Fatalf("read agent %s: %v", id, err)
	}
	replayed, err := registry.Replay(evs)
	if err != nil {
		t.Fatalf("replay agent %s: %v", id, err)
	}
	if replayed != stored {
		t.Errorf("agent %s: replayed events give\n%+v\nthe projection is\n%+v", id, replayed, stored)
	}
	if stored.HealthCallback == "" {
		t.Errorf("agent %s: the stored projection lost its health callback", id)
	}
	return v
}

// types lists the events' types.
func types(evs []registry.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func (h *harness) requestDoc(t testing.TB, id string) agentreq.Request {
	t.Helper()
	r, err := agentreq.Get(context.Background(), h.fs, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// auditEvents drains the tap and returns the audit payloads per event id, with their envelopes.
func (h *harness) auditEvents(t testing.TB) (map[string]auditPayload, map[string]int) {
	t.Helper()
	out, count := map[string]auditPayload{}, map[string]int{}
	for _, m := range h.tap.Drain(t, 2*time.Second)[events.TopicAuditEvents] {
		env, err := events.Decode(events.TopicAuditEvents, m.Data)
		if err != nil {
			t.Fatalf("undecodable audit event %s: %v", m.Data, err)
		}
		var p auditPayload
		if err := json.Unmarshal(env.Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.Stream != env.EngagementID || env.Source != registry.Source {
			t.Errorf("audit event %s: stream %q, engagement %q, source %q", env.EventID, p.Stream, env.EngagementID, env.Source)
		}
		out[env.EventID] = p
		count[env.EventID]++
	}
	return out, count
}

type auditPayload struct {
	Stream    string            `json:"stream"`
	EventType string            `json:"event_type"`
	ActorID   string            `json:"actor_id"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Context   map[string]string `json:"context"`
	Result    string            `json:"result"`
}

func at(min int) string {
	return time.Date(2026, 12, 1, 10, min, 0, 0, time.UTC).Format(time.RFC3339)
}
