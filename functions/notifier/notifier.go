// Package notifier is the Cloud Function that tells the Governor an approval is waiting. For
// each approval request on `approvals` it starts one notification_cascade execution (once per
// approval id), which calls back its private send route for each channel of
// rules/notification_cascade at that channel's time unless the approval is acknowledged; a
// decision on `decisions` cancels the execution. Channels (a signed webhook, email over SMTP)
// are adapters behind Channel. Every send and every failure that outlived its retries is an
// entry on the engagement's audit stream. See docs/notifier.md.
package notifier

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
	"waooaw.dev/governance/shared/notification"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/startup"
	"waooaw.dev/governance/shared/workflowexec"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Notifier"

// Source and Actor name this function in the events it publishes.
const (
	Source = "//waooaw/notifier"
	Actor  = "notifier"
)

// Notifier is the registered entry point.
var Notifier http.HandlerFunc

func init() { Notifier = startup.HTTP(FunctionName, open) }

func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	set, err := rules.Load(tables.FS)
	if err != nil {
		return nil, startup.Permanent(fmt.Errorf("notifier: rules: %w", err))
	}
	names, err := ChannelNames(set)
	if err != nil {
		return nil, startup.Permanent(err)
	}
	cfg, err := ConfigFrom(env.Env, names)
	if err != nil {
		return nil, err
	}
	src, closeSecrets, err := secrets.Open(ctx, cfg.SecretsDir, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("notifier: secrets: %w", err)
	}
	cached := secrets.NewCached(src, 5*time.Minute)
	channels := map[string]Channel{}
	for name, spec := range cfg.Channels {
		ch, err := spec.Open(cached.Get)
		if err != nil {
			_ = closeSecrets()
			return nil, startup.Permanent(err)
		}
		channels[name] = ch
	}
	wf, err := workflowexec.New(ctx, cfg.WorkflowsURL)
	if err != nil {
		_ = closeSecrets()
		return nil, err
	}
	fs, err := firestore.NewClient(ctx, cfg.Project)
	if err != nil {
		_ = closeSecrets()
		return nil, fmt.Errorf("notifier: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		_ = closeSecrets()
		fs.Close()
		return nil, fmt.Errorf("notifier: pubsub.NewClient: %w", err)
	}
	pub := NewPublisher(ps)
	s, err := New(Options{Firestore: fs, Publisher: pub, Executions: wf, Workflow: cfg.Workflow, Channels: channels,
		GatewayURL: cfg.GatewayURL, Rules: set, Logger: env.Log,
		LinkKey: func(ctx context.Context) ([]byte, error) { return cached.Get(ctx, notification.LinkKeySecret) }})
	if err != nil {
		pub.Close()
		_ = closeSecrets()
		return nil, errors.Join(startup.Permanent(err), ps.Close(), fs.Close())
	}
	env.OnShutdown(func(context.Context) error {
		pub.Close()
		return errors.Join(ps.Close(), fs.Close(), closeSecrets())
	})
	return s, nil
}

// NewPublisher publishes each event at once: a push or a send waits for its audit entry
// before it answers, so batching would only delay the answer.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = 10 * time.Second
	p.Settings = &st
	return p
}
