package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/startup"
	"waooaw.dev/governance/shared/workflowexec"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Gateway"

// Gateway is the registered entry point.
var Gateway http.HandlerFunc

func init() { Gateway = startup.HTTP(FunctionName, open) }

// open builds the gateway from its environment (see startup for when and how often).
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	cfg, err := ConfigFrom(env.Env)
	if err != nil {
		return nil, err
	}
	s, closeAll, err := Open(ctx, cfg, env.Log)
	if err != nil {
		return nil, err
	}
	env.OnShutdown(closeAll)
	return s, nil
}

// Open connects the gateway's clients as cfg says and returns the Server and a func that
// closes them, flushing queued attestations within ctx.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Server, func(context.Context) error, error) {
	var keys *auth.JWKS
	var err error
	if cfg.JWKSURL != "" {
		keys, err = auth.NewJWKS(cfg.JWKSURL)
	} else {
		keys, err = auth.StaticJWKS([]byte(cfg.JWKS))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: JWKS: %w", err)
	}
	verifier, err := auth.NewVerifier(cfg.Issuer, cfg.Audience, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: %w", err)
	}
	fs, err := firestore.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: firestore.NewClient: %w", err)
	}
	// The audit log's own database, which the gateway's identity may only read; the same
	// client when the log shares the default database (locally).
	auditFS, closeFS := fs, fs.Close
	if cfg.AuditDatabase != firestore.DefaultDatabaseID {
		if auditFS, err = firestore.NewClientWithDatabase(ctx, cfg.Project, cfg.AuditDatabase); err != nil {
			fs.Close()
			return nil, nil, fmt.Errorf("gateway: firestore.NewClientWithDatabase(%s): %w", cfg.AuditDatabase, err)
		}
		closeFS = func() error { return errors.Join(fs.Close(), auditFS.Close()) }
	}
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		closeFS()
		return nil, nil, fmt.Errorf("gateway: pubsub.NewClient: %w", err)
	}
	src, closeSecrets, err := secrets.Open(ctx, cfg.SecretsDir, cfg.Project)
	if err != nil {
		closeFS()
		ps.Close()
		return nil, nil, fmt.Errorf("gateway: %w", err)
	}
	pub := NewPublisher(ps)
	// Attestations leave in batches off the request path, on a publisher of their own with
	// the library's batching; Close flushes them (shutdown.OnSIGTERM calls it).
	attPub := events.NewPubSub(ps)
	attester := policy.NewAttester(eventsink.New(attPub, "//waooaw/gateway"), policy.WithErrorHandler(func(err error) {
		logger.Error("gateway: attestations not yet delivered; retrying", "error", err.Error())
	}))
	engine, err := policy.New(policy.WithAttester(attester))
	if err != nil {
		closeFS()
		ps.Close()
		closeSecrets()
		// Policies are embedded: one that does not compile fails every retry alike.
		return nil, nil, startup.Permanent(fmt.Errorf("gateway: %w", err))
	}
	// Without a Workflows client (no credentials for Google's API) the agent-request and
	// decision routes answer 503 and the rest of the gateway serves on.
	wf, err := workflowexec.New(ctx, cfg.WorkflowsURL)
	if err != nil {
		logger.Error("gateway: agent creation unavailable", "error", err.Error())
		wf = nil
	}
	// The policies read engagements' Governors and webhook clients' engagements as data
	// (data.platform.engagements, client_engagements): kept equal to Firestore's
	// collections for as long as the gateway runs.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	watch, err := StartWatch(wctx, fs, engine, func(err error) { logger.Error(err.Error()) })
	cancel()
	if err != nil {
		closeFS()
		ps.Close()
		closeSecrets()
		return nil, nil, err
	}
	s, err := New(Options{
		Publisher: pub,
		Firestore: fs,
		AuditLog:  auditFS,
		// Keys rotate rarely; five minutes bounds both Secret Manager calls and how long a
		// rotated-out key keeps working.
		Secrets:    secrets.NewCached(src, 5*time.Minute),
		Tokens:     verifier,
		Clients:    cfg.Clients,
		Watch:      watch,
		Authorizer: Policy{Engine: engine},
		Logger:     logger,

		Workflows:             wf,
		AgentCreationWorkflow: cfg.AgentCreationWorkflow,
		ConsoleDevTokenURL:    cfg.ConsoleDevTokenURL,
	})
	if err != nil {
		watch.Stop()
		closeFS()
		ps.Close()
		closeSecrets()
		return nil, nil, err
	}
	closeAll := func(ctx context.Context) error {
		watch.Stop()
		attErr := attester.Close(ctx)
		attPub.Close()
		pub.Close()
		return errors.Join(attErr, ps.Close(), closeFS(), closeSecrets())
	}
	return s, closeAll, nil
}

// NewPublisher is the gateway's publisher: each request waits for its publishes, so a
// message goes out at once instead of waiting up to 10 ms to share a batch.
func NewPublisher(c *pubsub.Client) *events.PubSub {
	p := events.NewPubSub(c)
	st := pubsub.DefaultPublishSettings
	st.DelayThreshold = time.Millisecond
	st.CountThreshold = 1
	st.Timeout = publishTimeout
	p.Settings = &st
	return p
}
