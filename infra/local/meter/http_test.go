package meter

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/emulators"
)

// function is a stand-in for a deployed function: it answers each stage call with its name.
func function(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/stages/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only its size matters
		fmt.Fprintf(w, `{"stage":%q}`, r.PathValue("name"))
	})
	mux.HandleFunc("POST /v1/approvals/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("POST /projects/{p}/topics/{t}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFunctionCountsInvocationsAndBytes(t *testing.T) {
	m := New()
	p, err := m.Function("", "genesis", function(t).URL, "POST /v1/stages/{name}")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx := context.Background()

	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		want         map[string]int64
	}{
		{"a stage call, by its pattern", "POST", "/v1/stages/specification", `{"request_id":"r1"}`, 200, map[string]int64{
			"http.genesis.invocations": 1, "http.genesis.request_bytes": 19, "http.genesis.response_bytes": 25,
			"http.genesis.paths.POST /v1/stages/{name}.invocations":    1,
			"http.genesis.paths.POST /v1/stages/{name}.response_bytes": 25,
		}},
		{"an unlisted path with an id", "POST", "/v1/approvals/apv-0123456789abcdef:close", `{}`, 204, map[string]int64{
			"http.genesis.invocations": 1, "http.genesis.request_bytes": 2,
			"http.genesis.paths.POST /v1/approvals/{id}:close.invocations": 1,
		}},
		{"a failure", "GET", "/fail", "", 503, map[string]int64{
			"http.genesis.invocations": 1, "http.genesis.errors": 1, "http.genesis.paths.GET /fail.invocations": 1,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := m.Snapshot(ctx)
			req, _ := http.NewRequest(tc.method, p.URL()+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck // drained to reuse the connection
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			after, _ := m.Snapshot(ctx)
			d := Diff(before, after)
			for k, v := range tc.want {
				if d.Get(k) != v {
					t.Errorf("%s = %d, want %d\n%s", k, d.Get(k), v, d)
				}
			}
		})
	}
}

// TestFunctionCountsPushDeliveries has the Pub/Sub emulator push to a function through
// the proxy, as the stack's push subscriptions do.
func TestFunctionCountsPushDeliveries(t *testing.T) {
	env := emulators.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := New()
	p, err := m.Function("", "registry", function(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c := env.PubSub(t)
	topic := fmt.Sprintf("projects/%s/topics/health_events", env.Project)
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	_, err = c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: fmt.Sprintf("projects/%s/subscriptions/registry-health", env.Project), Topic: topic,
		PushConfig: &pubsubpb.PushConfig{PushEndpoint: p.URL() + "/" + topic},
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := c.Publisher(topic)
	defer pub.Stop()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(`{"status":"healthy"}`), Attributes: map[string]string{"a": "b"}}).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	for ctx.Err() == nil {
		if s, _ = m.Snapshot(ctx); s.Get("pubsub.deliver.pushed") > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]int64{
		"pubsub.deliver.pushed":                         1,
		"pubsub.deliver.billed_bytes":                   1000, // 20 + 2 + 20 + len(id) is under the minimum
		"pubsub.subscriptions.registry-health.messages": 1,
		"http.registry.invocations":                     1,
		// The test's project id is id-like, so it is folded.
		"http.registry.paths.POST /projects/{id}/topics/health_events.invocations": 1,
	}
	if len(id) == 0 {
		t.Fatal("no message id")
	}
	for k, v := range want {
		if s.Get(k) != v {
			t.Errorf("%s = %d, want %d\n%s", k, s.Get(k), v, s)
		}
	}
}
