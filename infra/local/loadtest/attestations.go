package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Attestations is a pull subscription on policy_attestations made before a run, so that it
// holds every attestation published during the run.
type Attestations struct {
	client *pubsub.Client
	name   string
}

// Subscribe creates the subscription <prefix>-<unix nanos> on topic (policy_attestations)
// of project, through client (pointed at the emulator).
func Subscribe(ctx context.Context, client *pubsub.Client, project, topic, prefix string) (*Attestations, error) {
	name := fmt.Sprintf("projects/%s/subscriptions/%s-%d", project, prefix, time.Now().UnixNano())
	_, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:               name,
		Topic:              "projects/" + project + "/topics/" + topic,
		AckDeadlineSeconds: 60,
	})
	if err != nil {
		return nil, fmt.Errorf("loadtest: create subscription on %s: %w", topic, err)
	}
	return &Attestations{client: client, name: name}, nil
}

// Count is what Await found.
type Count struct {
	Want     int           // distinct decision ids answered
	Received int           // of those, how many arrived as attestations
	Repeats  int           // attestations of the run received more than once (retried sends)
	Others   int           // attestations of decisions outside the run
	Waited   time.Duration // from Await's call to the last one needed, or to the deadline
}

// Await pulls until an attestation has arrived for every id in want or wait has passed.
func (a *Attestations) Await(ctx context.Context, want []string, wait time.Duration) (Count, error) {
	pending := make(map[string]bool, len(want))
	for _, id := range want {
		pending[id] = true
	}
	c := Count{Want: len(pending)}
	seen := make(map[string]bool, len(pending))
	start := time.Now()
	if len(pending) == 0 {
		return c, nil
	}
	rctx, stop := context.WithTimeout(ctx, wait)
	defer stop()
	var mu sync.Mutex
	var bad error
	sub := a.client.Subscriber(a.name)
	sub.ReceiveSettings.MaxOutstandingMessages = 10000
	err := sub.Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		var e struct {
			Data struct {
				DecisionID string `json:"decision_id"`
			} `json:"data"`
		}
		err := json.Unmarshal(m.Data, &e)
		mu.Lock()
		defer mu.Unlock()
		switch id := e.Data.DecisionID; {
		case err != nil:
			bad = errors.Join(bad, fmt.Errorf("loadtest: attestation %.100s: %w", m.Data, err))
		case seen[id]:
			c.Repeats++
		case pending[id]:
			seen[id] = true
			delete(pending, id)
			c.Received++
			if len(pending) == 0 {
				c.Waited = time.Since(start)
				stop()
			}
		default:
			c.Others++
		}
	})
	mu.Lock()
	defer mu.Unlock()
	if c.Waited == 0 {
		c.Waited = time.Since(start)
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return c, fmt.Errorf("loadtest: pull attestations: %w", errors.Join(err, bad))
	}
	return c, bad
}

// Close deletes the subscription.
func (a *Attestations) Close(ctx context.Context) error {
	if err := a.client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: a.name}); err != nil {
		return fmt.Errorf("loadtest: delete subscription: %w", err)
	}
	return nil
}
