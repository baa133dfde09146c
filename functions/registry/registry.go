// Package registry is the Cloud Function of stage 7: the event-sourced agent registry.
// Every change to an agent is an event appended once under registry_agents/{agent_id}/events,
// and the agent's document is the fold of its events (Apply), written in the same
// transaction. The agent_creation workflow calls it to deploy, complete, roll back and undo;
// health_events reach it by push, and the first healthy report of a deploying agent is
// delivered to the workflow's callback. See docs/agent-creation.md.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/shared/budget"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/startup"
	"waooaw.dev/governance/shared/workflowexec"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Registry"

// Source names this function in the events it publishes.
const Source = "//waooaw/registry"

// Environment variables the registry reads (FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST
// are read by the client libraries themselves).
const (
	EnvProject      = startup.EnvProject
	EnvWorkflowsURL = "WAOOAW_WORKFLOWS_URL" // the Workflows emulator; unset = Google's Executions API
)

// Registry is the registered entry point.
var Registry http.HandlerFunc

func init() { Registry = startup.HTTP(FunctionName, open) }

// Config is what the registry needs from its environment.
type Config struct {
	Project      string
	WorkflowsURL string
}

// ConfigFrom reads the configuration, naming every missing or malformed variable at once.
func ConfigFrom(env *config.Env) (Config, error) {
	c := Config{Project: env.Required(EnvProject), WorkflowsURL: env.Optional(EnvWorkflowsURL, "")}
	if c.WorkflowsURL != "" {
		env.URL(EnvWorkflowsURL, c.WorkflowsURL, "http", "https")
	}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// open builds the registry from its environment (see startup for when and how often).
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	cfg, err := ConfigFrom(env.Env)
	if err != nil {
		return nil, err
	}
	fs, err := firestore.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, fmt.Errorf("registry: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		fs.Close()
		return nil, fmt.Errorf("registry: pubsub.NewClient: %w", err)
	}
	wf, err := workflowexec.New(ctx, cfg.WorkflowsURL)
	if err != nil {
		fs.Close()
		ps.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	pub := NewPublisher(ps)
	// The budget policy's decisions are attested like the gateway's, in batches off the
	// request path on a publisher of their own.
	attPub := events.NewPubSub(ps)
	attester := policy.NewAttester(eventsink.New(attPub, Source), policy.WithErrorHandler(func(err error) {
		env.Log.Error("registry: attestations not yet delivered; retrying", "error", err.Error())
	}))
	closeAll := func(ctx context.Context) error {
		attErr := attester.Close(ctx)
		attPub.Close()
		pub.Close()
		return errors.Join(attErr, ps.Close(), fs.Close())
	}
	engine, err := policy.New(policy.WithAttester(attester))
	if err != nil {
		closeAll(ctx)
		return nil, startup.Permanent(fmt.Errorf("registry: %w", err))
	}
	// The platform's budget state reaches the policy as data, kept by a listener: a halt is
	// enforced on the next deploy, with no poll.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	watch, err := budget.StartWatch(wctx, fs, engine, func(err error) { env.Log.Error(err.Error()) })
	cancel()
	if err != nil {
		closeAll(ctx)
		return nil, fmt.Errorf("registry: %w", err)
	}
	s, err := New(Options{Firestore: fs, Publisher: pub, Callbacks: wf, Logger: env.Log, Policy: engine})
	if err != nil {
		watch.Stop()
		closeAll(ctx)
		return nil, startup.Permanent(err)
	}
	env.OnShutdown(func(ctx context.Context) error {
		watch.Stop()
		return closeAll(ctx)
	})
	return s, nil
}

// NewPublisher is the registry's publisher: each call waits for its audit event, so a
// message goes out at once instead of waiting to share a batch.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = 10 * time.Second
	p.Settings = &st
	return p
}
