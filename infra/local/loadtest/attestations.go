package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	Waited   time.Duration // from Await's call to the last new one
}

// Await pulls until an attestation has arrived for every id in want, or until idle passes
// without a new one (the publishers have stopped, or what is left will not come).
// Synchronous pulls of up to 1000 messages, acknowledged together, keep the emulator's
// work per attestation small: it shares the machine with what is measured.
func (a *Attestations) Await(ctx context.Context, want []string, idle time.Duration) (Count, error) {
	pending := make(map[string]bool, len(want))
	for _, id := range want {
		pending[id] = true
	}
	c := Count{Want: len(pending)}
	seen := make(map[string]bool, len(pending))
	start := time.Now()
	progress := start
	for len(pending) > 0 && time.Since(progress) < idle {
		pctx, cancel := context.WithTimeout(ctx, min(idle, 2*time.Second))
		resp, err := a.client.SubscriptionAdminClient.Pull(pctx, &pubsubpb.PullRequest{Subscription: a.name, MaxMessages: 1000})
		cancel()
		switch {
		case ctx.Err() != nil:
			return c, ctx.Err()
		case status.Code(err) == codes.DeadlineExceeded:
			continue // nothing to pull for now
		case err != nil:
			return c, fmt.Errorf("loadtest: pull attestations: %w", err)
		}
		acks := make([]string, 0, len(resp.ReceivedMessages))
		for _, m := range resp.ReceivedMessages {
			acks = append(acks, m.AckId)
			var e struct {
				Data struct {
					DecisionID string `json:"decision_id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(m.Message.Data, &e); err != nil {
				return c, fmt.Errorf("loadtest: attestation %.100s: %w", m.Message.Data, err)
			}
			switch id := e.Data.DecisionID; {
			case seen[id]:
				c.Repeats++
			case pending[id]:
				seen[id] = true
				delete(pending, id)
				c.Received++
				progress = time.Now()
			default:
				c.Others++
			}
		}
		if len(acks) > 0 {
			if err := a.client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{Subscription: a.name, AckIds: acks}); err != nil {
				return c, fmt.Errorf("loadtest: acknowledge attestations: %w", err)
			}
		}
	}
	c.Waited = progress.Sub(start)
	return c, nil
}

// Close deletes the subscription.
func (a *Attestations) Close(ctx context.Context) error {
	if err := a.client.SubscriptionAdminClient.DeleteSubscription(ctx, &pubsubpb.DeleteSubscriptionRequest{Subscription: a.name}); err != nil {
		return fmt.Errorf("loadtest: delete subscription: %w", err)
	}
	return nil
}
