// Package architect is the Systems Architect: stage 4 of agent creation, the architecture
// review (connector catalogue, daily cost against the per-agent cap, duplicate agent name in
// the engagement), and its undo in the compensation saga. The workflow calls it; see
// docs/agent-creation.md.
package architect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/aireview"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/startup"
)

// EnvSecretsDir holds secrets as files (the local stack); unset, Secret Manager: where the
// AI reviews' keys are read.
const EnvSecretsDir = "WAOOAW_SECRETS_DIR"

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Architect"

// Architect is the registered entry point.
var Architect http.HandlerFunc

func init() { Architect = startup.HTTP(FunctionName, open) }

// open builds the architect from its environment (see startup for when and how often), its
// reviews' AI router included (aireview.Open).
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	project := env.Required(startup.EnvProject)
	secretsDir := env.Optional(EnvSecretsDir, "")
	if err := env.Err(); err != nil {
		return nil, err
	}
	set, err := rules.Load(tables.FS)
	if err != nil {
		// The tables are embedded: one that does not load fails every retry alike.
		return nil, startup.Permanent(fmt.Errorf("architect: %w", err))
	}
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("architect: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		fs.Close()
		return nil, fmt.Errorf("architect: pubsub.NewClient: %w", err)
	}
	pub := NewPublisher(ps)
	closeAll := func() error {
		pub.Close()
		return errors.Join(ps.Close(), fs.Close())
	}
	src, closeSecrets, err := secrets.Open(ctx, secretsDir, project)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("architect: %w", err)
	}
	asker, stopAI, err := aireview.Open(ctx, env.Env, src, fs, pub, func(err error) { env.Log.Error(err.Error()) })
	if err != nil {
		closeSecrets()
		closeAll()
		return nil, fmt.Errorf("architect: %w", err)
	}
	s, err := New(Options{Firestore: fs, Publisher: pub, Rules: set, AI: asker})
	if err != nil {
		stopAI()
		return nil, startup.Permanent(errors.Join(err, closeSecrets(), closeAll()))
	}
	env.OnShutdown(func(context.Context) error {
		stopAI()
		return errors.Join(closeSecrets(), closeAll())
	})
	return s, nil
}

// NewPublisher is the architect's publisher: each call waits for its audit event, so a
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
