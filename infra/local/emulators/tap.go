package emulators

import (
	"context"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Tap records what reaches a set of topics, through a pull subscription on each.
type Tap struct {
	client *pubsub.Client
	subs   map[string]string // topic -> subscription name
}

// Tap subscribes to each topic (all of the spec's topics when none are named); only
// messages published after the call are seen.
func (e *Env) Tap(t testing.TB, topics ...string) *Tap {
	t.Helper()
	c := e.PubSub(t)
	if len(topics) == 0 {
		spec := e.Provision(t, nil)
		for _, tp := range spec.Topics {
			topics = append(topics, tp.Name)
		}
	}
	tap := &Tap{client: c, subs: map[string]string{}}
	for _, tp := range topics {
		name := "tap-" + tp
		err := createSubscription(context.Background(), c, &pubsubpb.Subscription{
			Name: subName(e.Project, name), Topic: topicName(e.Project, tp), AckDeadlineSeconds: 60,
		})
		if err != nil {
			t.Fatal(err)
		}
		tap.subs[tp] = name
	}
	return tap
}

// Drain receives from every tapped topic until quiet has passed with nothing new, and
// returns the messages per topic (acknowledged).
func (tp *Tap) Drain(t testing.TB, quiet time.Duration) map[string][]*pubsub.Message {
	t.Helper()
	var mu sync.Mutex
	out := map[string][]*pubsub.Message{}
	var wg sync.WaitGroup
	for topic, name := range tp.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			last := make(chan struct{}, 1)
			go func() {
				timer := time.NewTimer(quiet)
				defer timer.Stop()
				for {
					select {
					case <-last:
						timer.Reset(quiet)
					case <-timer.C:
						cancel()
						return
					case <-ctx.Done():
						return
					}
				}
			}()
			err := tp.client.Subscriber(name).Receive(ctx, func(_ context.Context, m *pubsub.Message) {
				m.Ack()
				mu.Lock()
				out[topic] = append(out[topic], m)
				mu.Unlock()
				select {
				case last <- struct{}{}:
				default:
				}
			})
			if err != nil && ctx.Err() == nil {
				t.Errorf("tap %s: %v", topic, err)
			}
		}()
	}
	wg.Wait()
	return out
}
