// Package budgetguard is the Cloud Function that keeps the platform inside its monthly cap.
// It takes, by Pub/Sub push, Cloud Billing's budget notifications (budget_alerts, in
// billing's own format) and the platform's AI spend (spend_events), keeps the budget state
// in Firestore (budget/platform: normal, alert, suspended, halted, from
// rules/budget_thresholds) and acts once per transition: a financial approval request to
// the platform's Governor on alert, a budget suspension of every live non-critical agent
// through health_events on suspended, and an entry on the platform's audit stream for each.
// The refusals of a halt are the enforcement points' own: they read the state through
// shared/budget. See docs/budget.md.
package budgetguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/startup"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "BudgetGuard"

// Source and Actor name this function in the events it publishes.
const (
	Source = "//waooaw/budgetguard"
	Actor  = "budgetguard"
)

// BudgetGuard is the registered entry point.
var BudgetGuard http.HandlerFunc

func init() { BudgetGuard = startup.HTTP(FunctionName, open) }

// Config is what the guard needs from its environment.
type Config struct{ Project string }

// ConfigFrom reads the configuration, naming every missing variable at once.
func ConfigFrom(env *config.Env) (Config, error) {
	c := Config{Project: env.Required(startup.EnvProject)}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	cfg, err := ConfigFrom(env.Env)
	if err != nil {
		return nil, err
	}
	fs, err := firestore.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("budgetguard: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		fs.Close()
		return nil, fmt.Errorf("budgetguard: pubsub.NewClient: %w", err)
	}
	pub := NewPublisher(ps)
	s, err := New(Options{Firestore: fs, Publisher: pub, Logger: env.Log})
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

// NewPublisher publishes each event at once: a push waits for its effects before it is
// acknowledged, so batching would only delay the answer.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = 10 * time.Second
	p.Settings = &st
	return p
}
