// Package guardian is the Vision Guardian: stage 5 of agent creation, the ethics review
// (forbidden purposes, sensitive industries without their controls, risk flags), and its undo
// in the compensation saga, which withdraws the clearance. The workflow calls it; see
// docs/agent-creation.md.
package guardian

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/startup"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Guardian"

// Guardian is the registered entry point.
var Guardian http.HandlerFunc

func init() { Guardian = startup.HTTP(FunctionName, open) }

// open builds the guardian from its environment (see startup for when and how often).
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	project := env.Required(startup.EnvProject)
	if err := env.Err(); err != nil {
		return nil, err
	}
	set, err := rules.Load(tables.FS)
	if err != nil {
		// The tables are embedded: one that does not load fails every retry alike.
		return nil, startup.Permanent(fmt.Errorf("guardian: %w", err))
	}
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("guardian: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		fs.Close()
		return nil, fmt.Errorf("guardian: pubsub.NewClient: %w", err)
	}
	pub := NewPublisher(ps)
	s, err := New(Options{Firestore: fs, Publisher: pub, Rules: set})
	if err != nil {
		pub.Close()
		ps.Close()
		fs.Close()
		return nil, startup.Permanent(err)
	}
	env.OnShutdown(func(context.Context) error {
		pub.Close()
		return errors.Join(ps.Close(), fs.Close())
	})
	return s, nil
}

// NewPublisher is the guardian's publisher: each call waits for its audit event, so a
// message leaves at once instead of waiting to share a batch.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = 10 * time.Second
	p.Settings = &st
	return p
}
