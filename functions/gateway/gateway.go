package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/shutdown"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "Gateway"

func init() {
	functions.HTTP(FunctionName, Gateway)
	// When this process serves the gateway, connect while the framework starts, so the
	// first request does not pay for it alone.
	if os.Getenv("FUNCTION_TARGET") == FunctionName {
		Prepare()
	}
}

// instance is the process's Server, built on first need from the environment. A failed
// build is retried by the next request rather than kept, so a transient error at start does
// not brick the instance.
var instance struct {
	srv atomic.Pointer[Server]
	mu  sync.Mutex
}

func current() (*Server, error) {
	if s := instance.srv.Load(); s != nil {
		return s, nil
	}
	instance.mu.Lock()
	defer instance.mu.Unlock()
	if s := instance.srv.Load(); s != nil {
		return s, nil
	}
	cfg, err := ConfigFrom(config.FromOS())
	if err != nil {
		return nil, err
	}
	s, closeAll, err := Open(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	shutdown.OnSIGTERM(s.opt.Logger, closeAll)
	instance.srv.Store(s)
	return s, nil
}

// Prepare builds the process's Server in the background; requests arriving meanwhile wait
// for it.
func Prepare() {
	go func() {
		if _, err := current(); err != nil {
			logging.New(os.Stdout, nil).Error("gateway: prepare failed; the first request will retry", "error", err.Error())
		}
	}()
}

// Gateway is the HTTP function.
func Gateway(w http.ResponseWriter, r *http.Request) {
	s, err := current()
	if err != nil {
		logging.New(os.Stdout, nil).ErrorContext(r.Context(), "gateway: not configured", "error", err.Error())
		writeError(w, &apiError{code: http.StatusInternalServerError, msg: "gateway not configured"})
		return
	}
	s.ServeHTTP(w, r)
}

// Open connects the gateway's clients as cfg says and returns the Server and a func that
// closes them, flushing queued attestations within ctx.
func Open(ctx context.Context, cfg Config) (*Server, func(context.Context) error, error) {
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
	logger := logging.New(os.Stdout, &logging.Options{Project: cfg.Project})
	fs, err := firestore.NewClient(ctx, cfg.Project)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: firestore.NewClient: %w", err)
	}
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		fs.Close()
		return nil, nil, fmt.Errorf("gateway: pubsub.NewClient: %w", err)
	}
	src, closeSecrets, err := secrets.Open(ctx, cfg.SecretsDir, cfg.Project)
	if err != nil {
		fs.Close()
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
		fs.Close()
		ps.Close()
		closeSecrets()
		return nil, nil, fmt.Errorf("gateway: %w", err)
	}
	s, err := New(Options{
		Publisher: pub,
		Firestore: fs,
		// Keys rotate rarely; five minutes bounds both Secret Manager calls and how long a
		// rotated-out key keeps working.
		Secrets:    secrets.NewCached(src, 5*time.Minute),
		Tokens:     verifier,
		Clients:    cfg.Clients,
		Authorizer: Policy{Engine: engine},
		Logger:     logger,
	})
	if err != nil {
		return nil, nil, err
	}
	closeAll := func(ctx context.Context) error {
		attErr := attester.Close(ctx)
		attPub.Close()
		pub.Close()
		return errors.Join(attErr, ps.Close(), fs.Close(), closeSecrets())
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
