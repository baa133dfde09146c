package pdp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/functions/pdp"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

// A correlation id too long to be an ordering key is refused with 400 naming the header,
// before anything is decided or attested; the decisions after it are answered and their
// attestations reach policy_attestations through the Pub/Sub emulator.
func TestLongCorrelationIDRefusedAndDecisionsFlow(t *testing.T) {
	env := emulators.ForTest(t)
	t.Setenv("PUBSUB_EMULATOR_HOST", env.PubSubHost)
	env.Provision(t, nil)
	client := env.PubSub(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := "projects/" + env.Project + "/subscriptions/pdp-limits-test"
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:  sub,
		Topic: "projects/" + env.Project + "/topics/" + events.TopicPolicyAttestations,
	}); err != nil {
		t.Fatal(err)
	}
	ps := events.NewPubSub(client)
	defer ps.Close()
	att := policy.NewAttester(eventsink.New(ps, pdp.Source))
	h, err := pdp.Setup(policy.WithAttester(att))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(corr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/v1/data/waooaw/rbac/decision", strings.NewReader(`{"input": {"subject": {"role": "admin"}, "action": "read"}}`))
		req.Header.Set("X-Correlation-Id", corr)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var decided []string
	for _, tc := range []struct {
		name, corr string
		status     int
		want       string
	}{
		{"2 KB id", strings.Repeat("c", 2048), http.StatusBadRequest, `X-Correlation-Id is 2048 bytes, more than 256`},
		{"at the limit", strings.Repeat("d", events.MaxIDLen), http.StatusOK, `"allow":true`},
		{"2 KB again", strings.Repeat("e", 2048), http.StatusBadRequest, `"code": "invalid_parameter"`},
		{"usual id", "corr-after-refusal", http.StatusOK, `"allow":true`},
	} {
		rec := decide(tc.corr)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("%s: %d %s; want %d containing %s", tc.name, rec.Code, rec.Body, tc.status, tc.want)
		}
		if tc.status == http.StatusOK {
			var resp struct {
				DecisionID string `json:"decision_id"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.DecisionID == "" {
				t.Fatalf("%s: %s: %v", tc.name, rec.Body, err)
			}
			decided = append(decided, resp.DecisionID)
		}
	}
	if err := att.Close(ctx); err != nil {
		t.Fatalf("attestations not delivered: %v", err)
	}

	got := map[string]bool{}
	var mu sync.Mutex
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Errorf("message %s: %v", m.Data, err)
		}
		mu.Lock()
		defer mu.Unlock()
		got[e.EventID] = true
		if len(got) == len(decided) {
			stop()
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range decided {
		if !got[id] {
			t.Errorf("decision %s not attested on %s (got %v)", id, events.TopicPolicyAttestations, got)
		}
	}
	for id := range got {
		if !slices.Contains(decided, id) {
			t.Errorf("attestation %s of no decision answered", id)
		}
	}
}
