package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/meter"
	"waooaw.dev/governance/infra/local/workflows/workflowstest"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/policytest"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/workflowexec"
)

const (
	issuer    = "http://issuer.local"
	audience  = "waooaw-governance"
	devClient = "dev-client"
)

var devSecret = []byte("dev-secret-for-tests-at-least-32-bytes")

// Key generation costs tens of milliseconds: one pair serves the whole test binary.
var (
	keyOnce sync.Once
	keyPair *devauth.KeyPair
	keyErr  error
)

func testKey(t testing.TB) *devauth.KeyPair {
	t.Helper()
	keyOnce.Do(func() { keyPair, keyErr = devauth.GenerateKeyPair() })
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return keyPair
}

// harness is a gateway on loopback, wired to the real emulators in a fresh project whose
// topics all have a tap, with a JWKS served over http as the local stack serves its own.
type harness struct {
	env     *emulators.Env
	url     string
	key     *devauth.KeyPair
	tap     *emulators.Tap
	dir     string // secrets
	opts    gateway.Options
	attest  *policytest.MemorySink // every decision the gateway's policy engine attested
	attr    *policy.Attester
	noTopic bool
	logTo   io.Writer
	engine  *policy.Engine
	// With withWorkflows: the emulator, the test workflow and the stage stand-in.
	emu      *workflowstest.Emulator
	workflow string
	genesis  *genesisStandIn
	// skew moves the gateway's clock ahead of the real one.
	skew atomic.Int64
	// meter, with withMeteredAuditLog, counts what the gateway reads of the audit log.
	meter *meter.Meter
	// wrapSecrets, with withSecrets, stands between the gateway and the secrets folder.
	wrapSecrets func(secrets.Source) secrets.Source
}

// withSecrets puts wrap around the secrets folder the gateway reads keys from.
func withSecrets(wrap func(secrets.Source) secrets.Source) harnessOption {
	return func(h *harness) { h.wrapSecrets = wrap }
}

type harnessOption func(*harness)

func withClients(c ...string) harnessOption { return func(h *harness) { h.opts.Clients = c } }

// withLog sends the gateway's log lines to w.
func withLog(w io.Writer) harnessOption { return func(h *harness) { h.logTo = w } }

// withWorkflows runs the Workflows emulator in-process (virtual clock) with the test
// workflow deployed as the gateway's agent_creation, and its stage stand-in.
func withWorkflows() harnessOption { return func(h *harness) { h.emu = &workflowstest.Emulator{} } }

// withVerifyLimit sets each caller's allowance of audit stream walks.
func withVerifyLimit(l gateway.RateLimit) harnessOption {
	return func(h *harness) { h.opts.VerifyLimit = &l }
}

// withMeteredAuditLog gives the gateway an audit log client that reaches the Firestore
// emulator through a usage meter, so a test counts the reads of verification and entries.
func withMeteredAuditLog() harnessOption { return func(h *harness) { h.meter = meter.New() } }

// withoutTopics leaves the project empty, so publishing fails until topics are created.
func withoutTopics() harnessOption { return func(h *harness) { h.noTopic = true } }

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{env: emulators.ForTest(t), key: testKey(t), dir: t.TempDir()}
	h.opts.Clients = []string{devClient}
	for _, o := range opts {
		o(h)
	}
	if !h.noTopic {
		h.tap = h.env.Tap(t) // provisions every topic of infrastructure.yaml and taps it
	}
	h.writeSecret(t, devClient, string(devSecret)+"\n")

	jwks, err := h.key.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(jwks) }))
	t.Cleanup(jwksSrv.Close)
	keys, err := auth.NewJWKS(jwksSrv.URL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(issuer, audience, keys)
	if err != nil {
		t.Fatal(err)
	}
	pub := gateway.NewPublisher(h.env.PubSub(t))
	t.Cleanup(pub.Close)
	h.opts.Publisher = pub
	h.opts.Firestore = h.env.Firestore(t)
	h.opts.Now = func() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }
	if h.meter != nil {
		p, err := h.meter.Firestore("", h.env.FirestoreHost)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		conn, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		fs, err := firestore.NewClient(context.Background(), h.env.Project, option.WithGRPCConn(conn))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		h.opts.AuditLog = fs
	}
	h.opts.Secrets = secrets.Dir(h.dir)
	if h.wrapSecrets != nil {
		h.opts.Secrets = h.wrapSecrets(h.opts.Secrets)
	}
	h.opts.Tokens = verifier
	switch {
	case h.logTo != nil:
		h.opts.Logger = logging.New(h.logTo, &logging.Options{Project: h.env.Project})
	case testing.Verbose():
		h.opts.Logger = logging.New(os.Stderr, &logging.Options{Project: h.env.Project})
	default:
		h.opts.Logger = logging.New(io.Discard, nil)
	}
	h.attest = &policytest.MemorySink{}
	h.attr = policy.NewAttester(h.attest, policy.WithBatch(1, time.Millisecond))
	t.Cleanup(func() { h.attr.Close(context.Background()) })
	engine, err := policy.New(policy.WithAttester(h.attr))
	if err != nil {
		t.Fatal(err)
	}
	h.engine = engine
	h.opts.Authorizer = gateway.Policy{Engine: engine}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	watch, err := gateway.StartWatch(wctx, h.opts.Firestore, engine, func(err error) { t.Logf("listener: %v", err) })
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(watch.Stop)
	h.opts.Watch = watch
	if h.emu != nil {
		h.emu = workflowstest.New(t)
		h.genesis = newGenesisStandIn(t, h.opts.Firestore)
		h.workflow = h.emu.Deploy("agent_creation", testWorkflow(h.genesis.url))
		wf, err := workflowexec.New(context.Background(), h.emu.URL())
		if err != nil {
			t.Fatal(err)
		}
		h.opts.Workflows, h.opts.AgentCreationWorkflow = wf, h.workflow
	}
	gw, err := gateway.New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// bind binds client to each engagement as the admin API stores it (without its audit
// event, so tests counting messages see only their own) and waits until the gateway
// enforces it. TestClientBindings covers the API itself.
func (h *harness) bind(t testing.TB, client string, engagements ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, eng := range engagements {
		_, err := h.opts.Firestore.Collection(gateway.EngagementClients).Doc(client+":"+eng).Set(ctx, map[string]any{
			"engagement_id": eng, "client_id": client, "bound": true, "bound_by": "user:root", "bound_at": time.Now().UTC().Format(time.RFC3339Nano)})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.opts.Watch.WaitBinding(ctx, client, eng, true); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *harness) writeSecret(t testing.TB, client, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.dir, gateway.WebhookSecretName(client)), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
}

// signed builds a webhook request signed by client with secret at time at.
func signed(url string, body []byte, client string, secret []byte, at time.Time) *http.Request {
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	r.Header.Set("Content-Type", "application/json")
	auth.SignWebhook(r.Header, client, secret, body, at)
	return r
}

func (h *harness) webhook(kind string, body []byte) *http.Request {
	return signed(h.url+"/v1/webhooks/"+kind, body, devClient, devSecret, time.Now())
}

type answer struct {
	status  int
	header  http.Header
	eventID string
	errCode int
	errMsg  string
	raw     string
}

func do(t testing.TB, r *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if resp.StatusCode == http.StatusNoContent {
		if len(b) != 0 {
			t.Fatalf("%s %s: 204 with a body %s", r.Method, r.URL.Path, b)
		}
		return a
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %s", r.Method, r.URL.Path, ct, b)
	}
	var v struct {
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	a.eventID = v.EventID
	var eb gateway.ErrorBody
	if resp.StatusCode >= 400 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&eb); err != nil {
			t.Fatalf("error answer is not {\"error\":{code,message}}: %v: %s", err, b)
		}
		a.errCode, a.errMsg = eb.Error.Code, eb.Error.Message
		if a.errCode != resp.StatusCode || a.errMsg == "" {
			t.Fatalf("error body %s does not match status %d", b, resp.StatusCode)
		}
	}
	return a
}

func healthBody(agent, engagement, status string) []byte {
	return []byte(`{"agent_id":"` + agent + `","engagement_id":"` + engagement + `","status":"` + status + `","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}`)
}

// drain waits until the tap has been quiet for a while and returns what arrived, per topic.
func (h *harness) drain(t testing.TB) map[string][]events.Envelope {
	t.Helper()
	got := map[string][]events.Envelope{}
	for topic, msgs := range h.tap.Drain(t, 2*time.Second) {
		for _, m := range msgs {
			env, err := events.Decode(topic, m.Data)
			if err != nil {
				t.Fatalf("%s: undecodable message %s: %v", topic, m.Data, err)
			}
			if want, err := events.OrderingKey(topic, env); err != nil || m.OrderingKey != want {
				t.Errorf("%s: ordering key %q, want %q (%v)", topic, m.OrderingKey, want, err)
			}
			got[topic] = append(got[topic], env)
		}
	}
	return got
}

// attested flushes the attester and returns the attested decisions by id.
func (h *harness) attested(t testing.TB) map[string]policy.Attestation {
	t.Helper()
	if err := h.attr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string]policy.Attestation{}
	for _, a := range h.attest.Attestations() {
		out[a.DecisionID] = a
	}
	return out
}
