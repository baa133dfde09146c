// Package guardian is the Vision Guardian: stage 5 of agent creation, the ethics review
// (forbidden purposes, sensitive industries without their controls, risk flags), and its undo
// in the compensation saga, which withdraws the clearance. The workflow calls it; see
// docs/agent-creation.md. Every 10 minutes Cloud Scheduler has it check the audit chain
// from its last signed checkpoints and anchor the new heads in a write-once bucket; see
// docs/audit.md.
package guardian

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/aireview"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/startup"
	"waooaw.dev/governance/shared/store"
)

// Configuration the guardian reads besides GOOGLE_CLOUD_PROJECT.
const (
	EnvAnchorBucket = "WAOOAW_ANCHOR_BUCKET" // the write-once bucket of audit anchors
	EnvSecretsDir   = "WAOOAW_SECRETS_DIR"   // secrets from files (the local stack); unset = Secret Manager
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Guardian"

// Guardian is the registered entry point.
var Guardian http.HandlerFunc

func init() { Guardian = startup.HTTP(FunctionName, open) }

// open builds the guardian from its environment (see startup for when and how often), its
// reviews' AI router included (aireview.Open), with the keys from the same secret source as
// the anchors' key.
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	project := env.Required(startup.EnvProject)
	bucket := env.Required(EnvAnchorBucket)
	secretsDir := env.Optional(EnvSecretsDir, "")
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
	auditFS, err := store.NewAuditClient(ctx) // read only: its grant on that database is a viewer's
	if err != nil {
		ps.Close()
		fs.Close()
		return nil, fmt.Errorf("guardian: %w", err)
	}
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		auditFS.Close()
		ps.Close()
		fs.Close()
		return nil, fmt.Errorf("guardian: storage.NewClient: %w", err)
	}
	src, closeSecrets, err := secrets.Open(ctx, secretsDir, project)
	if err != nil {
		gcs.Close()
		auditFS.Close()
		ps.Close()
		fs.Close()
		return nil, fmt.Errorf("guardian: %w", err)
	}
	pub := NewPublisher(ps)
	asker, stopAI, err := aireview.Open(ctx, env.Env, src, fs, pub, func(err error) { env.Log.Error(err.Error()) })
	if err != nil {
		pub.Close()
		return nil, fmt.Errorf("guardian: %w", errors.Join(err, closeSecrets(), gcs.Close(), auditFS.Close(), ps.Close(), fs.Close()))
	}
	s, err := New(Options{Firestore: fs, Publisher: pub, Rules: set, AI: asker, Anchoring: &Anchoring{
		AuditLog: auditFS,
		Store:    GCSAnchors{Bucket: gcs.Bucket(bucket)},
		Key:      func(ctx context.Context) ([]byte, error) { return src.Get(ctx, AnchorKeySecret) },
		Log:      env.Log,
	}})
	if err != nil {
		stopAI()
		pub.Close()
		return nil, startup.Permanent(errors.Join(err, closeSecrets(), gcs.Close(), auditFS.Close(), ps.Close(), fs.Close()))
	}
	env.OnShutdown(func(context.Context) error {
		stopAI()
		pub.Close()
		return errors.Join(closeSecrets(), gcs.Close(), auditFS.Close(), ps.Close(), fs.Close())
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
