package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/schema"
	"waooaw.dev/governance/shared/secrets"
)

// Source is the envelope source of every event the gateway publishes.
const Source = "//waooaw/gateway"

// kind is one webhook route: the body is the data record of topic's schema.
type kind struct {
	name      string
	topic     string
	eventType string
	resource  string              // the policies' resource type
	target    func(b body) string // the audit entry's target
	schema    avro.Schema
}

func (k kind) action() string { return "webhook." + k.name }

// body holds the fields of a webhook body the gateway itself needs.
type body struct {
	AgentID      string `json:"agent_id"`
	EngagementID string `json:"engagement_id"`
	Service      string `json:"service"`
	ApprovalID   string `json:"approval_id"`
}

var kinds = map[string]kind{
	"health":   {name: "health", topic: events.TopicHealthEvents, eventType: "waooaw.health.reported", resource: "health_report", target: func(b body) string { return "agent:" + b.AgentID }},
	"slo":      {name: "slo", topic: events.TopicSLOBreach, eventType: "waooaw.slo.breached", resource: "slo_breach", target: func(b body) string { return "service:" + b.Service }},
	"approval": {name: "approval", topic: events.TopicApprovals, eventType: "waooaw.approval.requested", resource: "approval_request", target: func(b body) string { return "approval:" + b.ApprovalID }},
}

func init() {
	for n, k := range kinds {
		s, err := schema.Default().Record(k.topic, "data")
		if err != nil {
			panic(fmt.Sprintf("gateway: schema of %s: %v", k.topic, err)) // embedded; covered by tests
		}
		k.schema = s
		kinds[n] = k
	}
}

// MinWebhookSecretBytes is the shortest webhook key used: 256 bits, HMAC-SHA256's own
// strength; checked here too whatever Source the gateway is given.
const MinWebhookSecretBytes = secrets.MinLength

// AuditEventType is the type of the audit_events envelope published with each webhook event.
const AuditEventType = "waooaw.audit.recorded"

func webhookTarget(req *request) (Access, *apiError) {
	k, ok := kinds[req.PathValue("kind")]
	if !ok {
		return Access{}, errorf(http.StatusNotFound, "unknown webhook kind %q; use health, slo or approval", req.PathValue("kind"))
	}
	req.kind = k
	return Access{Action: ActionSubmit, ResourceType: k.resource, ResourceID: k.topic}, nil
}

// authenticateWebhook checks the client's signature over the raw body. Everything that
// needs neither the body nor a secret (headers, time window, allow-list) is checked first,
// so a stale or foreign request costs neither a body read nor a Secret Manager call.
func (s *Server) authenticateWebhook(req *request) *apiError {
	wh, err := auth.ParseWebhook(req.Header)
	if err != nil {
		return &apiError{code: http.StatusUnauthorized, msg: publicAuthMessage(err), cause: err}
	}
	if err := wh.CheckTime(s.opt.Now(), auth.WebhookTolerance); err != nil {
		return &apiError{code: http.StatusUnauthorized, msg: "timestamp outside the 5 minute window", cause: err}
	}
	if !clientIDRE.MatchString(wh.Client) || !slices.Contains(s.opt.Clients, wh.Client) {
		return errorf(http.StatusUnauthorized, "unknown client")
	}
	if req.ContentLength > MaxBodyBytes {
		return errorf(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBodyBytes)
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "body over %d bytes", MaxBodyBytes)
		}
		return &apiError{code: http.StatusBadRequest, msg: "could not read body", cause: err}
	}
	secret, err := s.opt.Secrets.Get(req.Context(), WebhookSecretName(wh.Client))
	if errors.Is(err, secrets.ErrNotFound) {
		return &apiError{code: http.StatusUnauthorized, msg: "unknown client", cause: err}
	}
	if err == nil && len(secret) < MinWebhookSecretBytes {
		err = fmt.Errorf("gateway: secret %s holds %d bytes, want at least %d: %w", WebhookSecretName(wh.Client), len(secret), MinWebhookSecretBytes, secrets.ErrTooShort)
	}
	if errors.Is(err, secrets.ErrTooShort) {
		// A short key is guessable: the platform's misconfiguration, never the caller's, so
		// it is logged at ERROR (5xx) and no signature is checked against it.
		return &apiError{code: http.StatusServiceUnavailable, msg: "this client's webhook key is misconfigured on the platform; the operators are told", cause: err}
	}
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "secrets unavailable; retry", cause: err}
	}
	if err := wh.Verify(secret, b); err != nil {
		return &apiError{code: http.StatusUnauthorized, msg: "bad signature", cause: err}
	}
	req.body, req.webhook = b, wh
	req.principal = Principal{Kind: "client", ID: wh.Client, Role: ClientRole}
	req.log = append(req.log, "client", wh.Client, "kind", req.kind.name)
	return nil
}

// publicAuthMessage shows the caller what is wrong with its headers; auth's messages name
// headers only, never the secret or the expected MAC.
func publicAuthMessage(err error) string { return strings.TrimPrefix(err.Error(), "auth: ") }

// accepted is the answer to an accepted webhook.
type accepted struct {
	EventID string `json:"event_id"`
}

// HeaderReplay is set on the answer to a request that was already accepted.
const HeaderReplay = "X-Waooaw-Replay"

// twinWait is how long a request waits for a twin that is publishing right now, before
// answering 409; a publish normally takes milliseconds.
const twinWait = 2 * time.Second

// publishTimeout bounds the publishes of one request; it is well inside the ledger lease,
// so a request that is still publishing is never taken over.
const publishTimeout = 10 * time.Second

// webhookBody is a verified webhook body, normalized to its topic's schema.
type webhookBody struct {
	b    body
	data []byte
}

// resolveWebhook validates the body and scopes the decision to the engagement it names:
// data_scope allows a client only the engagements an admin bound it to.
func (s *Server) resolveWebhook(req *request, a *Access) *apiError {
	k := req.kind
	data, err := schema.NormalizeTo(k.schema, req.body, "")
	if err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			return &apiError{code: http.StatusBadRequest, msg: fe.Error(), cause: err}
		}
		return &apiError{code: http.StatusInternalServerError, msg: "internal error", cause: fmt.Errorf("normalize %s body: %w", k.name, err)}
	}
	var b body
	if err := json.Unmarshal(data, &b); err != nil {
		return &apiError{code: http.StatusInternalServerError, msg: "internal error", cause: fmt.Errorf("decode normalized %s body: %w", k.name, err)}
	}
	// The engagement names the audit stream: refuse what the auditor could never append.
	if err := audit.CheckStream(b.EngagementID); err != nil {
		return &apiError{code: http.StatusBadRequest, msg: "field engagement_id: not usable as an audit stream", cause: err}
	}
	a.Engagement, a.Bundles = b.EngagementID, []string{"rbac", "data_scope"}
	req.route = webhookBody{b: b, data: data}
	return nil
}

func (s *Server) serveWebhook(w http.ResponseWriter, req *request) error {
	k := req.kind
	wb := req.route.(webhookBody)
	b, data := wb.b, wb.data

	msgs, err := s.buildEvents(req, k, b, data)
	if err != nil {
		return err
	}
	ctx := req.Context()
	rec := ledgerRecord{Client: req.webhook.Client, Kind: k.name, EventID: msgs[0].env.EventID, Messages: msgs}
	t0 := time.Now()
	claim, err := s.ledger.beginOrWait(ctx, req.webhook.ReplayKey(), req.webhook.Timestamp, rec, twinWait)
	req.log = append(req.log, "ledger_ms", ms(time.Since(t0)))
	if err != nil {
		return ledgerError(err)
	}
	req.log = append(req.log, "event_id", claim.rec.EventID)
	if claim.done {
		w.Header().Set(HeaderReplay, "true")
		writeJSON(w, http.StatusAccepted, accepted{EventID: claim.rec.EventID})
		return nil
	}
	if claim.takeover {
		req.log = append(req.log, "takeover", true)
	}

	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	t1 := time.Now()
	err = s.publishAll(pctx, claim.rec.Messages)
	req.log = append(req.log, "publish_ms", ms(time.Since(t1)))
	if err != nil {
		// Record what went out so a retry of the same request publishes only the rest.
		if ferr := s.ledger.fail(context.WithoutCancel(ctx), claim, claim.rec.Messages); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return &apiError{code: http.StatusServiceUnavailable, msg: "could not publish; retry the same request", cause: err}
	}
	t2 := time.Now()
	err = s.ledger.finish(context.WithoutCancel(ctx), claim)
	req.log = append(req.log, "finish_ms", ms(time.Since(t2)))
	if err != nil {
		// Published but not marked: a retry after the lease would publish the same events
		// again (same event ids, which consumers dedupe). The caller's event is accepted.
		req.log = append(req.log, "ledger_error", err.Error())
	}
	writeJSON(w, http.StatusAccepted, accepted{EventID: claim.rec.EventID})
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// buildEvents makes the topic's event and the audit event it causes.
func (s *Server) buildEvents(req *request, k kind, b body, data []byte) ([]ledgerMessage, error) {
	actor := req.principal.Actor()
	ev, err := events.New(k.eventType, Source, actor, json.RawMessage(data))
	if err != nil {
		return nil, err
	}
	// The caller's X-Correlation-Id, or the one the chain made for this request: either way
	// the same id is on the answer, the logs and the events.
	ev.CorrelationID = logging.CorrelationID(req.Context())
	ev.AgentID, ev.EngagementID = b.AgentID, b.EngagementID

	au, err := events.New(AuditEventType, Source, actor, map[string]any{
		"stream":     b.EngagementID,
		"event_type": k.eventType,
		"actor_id":   actor,
		"actor_type": "client",
		"action":     k.action(),
		"target":     k.target(b),
		"context":    map[string]string{"topic": k.topic, "event_id": ev.EventID, "kind": k.name},
		"result":     "accepted",
	})
	if err != nil {
		return nil, err
	}
	au = au.CausedBy(ev)
	au.AgentID, au.EngagementID = b.AgentID, b.EngagementID

	// Encode now so a schema problem is a 500 here, before anything is recorded.
	for _, m := range []struct {
		topic string
		env   events.Envelope
	}{{k.topic, ev}, {events.TopicAuditEvents, au}} {
		if _, err := events.Encode(m.topic, m.env); err != nil {
			var idErr *events.IDError
			if errors.As(err, &idErr) {
				// An id Pub/Sub could not carry as a key or attribute is the caller's to fix.
				return nil, &apiError{code: http.StatusBadRequest, msg: fmt.Sprintf("%s is %d bytes, more than %d", idErr.Field, idErr.Len, events.MaxIDLen), cause: err}
			}
			return nil, fmt.Errorf("build %s event: %w", m.topic, err)
		}
	}
	return []ledgerMessage{{Topic: k.topic, env: ev}, {Topic: events.TopicAuditEvents, env: au}}, nil
}

// publishAll publishes the messages not yet published, concurrently (they are on different
// topics, so no order between them is promised), and marks each that went out.
func (s *Server) publishAll(ctx context.Context, msgs []ledgerMessage) error {
	var wg sync.WaitGroup
	errs := make([]error, len(msgs))
	for i := range msgs {
		if msgs[i].Published {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.opt.Publisher.Publish(ctx, msgs[i].Topic, msgs[i].env); err != nil {
				errs[i] = err
				return
			}
			msgs[i].Published = true
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ledgerError is the answer to a request the replay ledger refused.
func ledgerError(err error) *apiError {
	var ke *kindError
	switch {
	case errors.As(err, &ke):
		return &apiError{code: http.StatusConflict, msg: "this signed request was already used for a " + ke.kind + " webhook", cause: err}
	case errors.Is(err, errInProgress):
		return &apiError{code: http.StatusConflict, msg: "the same request is being processed; retry shortly", cause: err}
	default:
		return &apiError{code: http.StatusServiceUnavailable, msg: "replay store unavailable; retry", cause: err}
	}
}
