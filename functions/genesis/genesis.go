// Package genesis is the Genesis function of agent creation: stages 1–3 (specification, way
// of working, certification) and 6 (Governor approval, with precedent seeds), the opening and
// closing of every Governor approval, the seeds' false-positive counts, the undo of a
// certification and a request's terminal failure. The agent_creation workflow calls it;
// docs/agent-creation.md is the contract, and every change goes through shared/agentreq.
package genesis

import (
	"context"
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
const FunctionName = "Genesis"

// Genesis is the registered entry point.
var Genesis http.HandlerFunc

func init() { Genesis = startup.HTTP(FunctionName, open) }

// open connects Firestore and Pub/Sub in GOOGLE_CLOUD_PROJECT, loads the embedded decision
// tables and builds the AI router of its reviews (aireview.Open); a table that does not
// load, or lacks what Genesis reads, stops the instance.
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	project := env.Required(startup.EnvProject)
	secretsDir := env.Optional(EnvSecretsDir, "")
	if err := env.Err(); err != nil {
		return nil, err
	}
	set, err := rules.Load(tables.FS)
	if err != nil {
		return nil, startup.Permanent(fmt.Errorf("genesis: %w", err))
	}
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("genesis: firestore.NewClient: %w", err)
	}
	env.OnShutdown(func(context.Context) error { return fs.Close() })
	ps, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("genesis: pubsub.NewClient: %w", err)
	}
	env.OnShutdown(func(context.Context) error { return ps.Close() })
	pub := NewPublisher(ps)
	env.OnShutdown(func(context.Context) error { pub.Close(); return nil })
	src, closeSecrets, err := secrets.Open(ctx, secretsDir, project)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	env.OnShutdown(func(context.Context) error { return closeSecrets() })
	asker, stopAI, err := aireview.Open(ctx, env.Env, src, fs, pub, func(err error) { env.Log.Error(err.Error()) })
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	env.OnShutdown(func(context.Context) error { stopAI(); return nil })
	s, err := New(Options{Firestore: fs, Publisher: pub, Rules: set, Logger: env.Log, AI: asker})
	if err != nil {
		return nil, startup.Permanent(err)
	}
	return s, nil
}

// NewPublisher is Genesis's publisher: every call waits for its publishes, so a message goes
// out at once instead of waiting up to 10 ms to share a batch.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = 10 * time.Second
	p.Settings = &st
	return p
}
