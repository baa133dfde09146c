// Package pdp is the OPA-compatible policy decision point for callers that
// are not Go: POST /v1/data/waooaw/<bundle>/<rule> with {"input": ...}
// answers {"result": ..., "decision_id": "..."}, as `opa run --server` does
// for the same policies, and GET /health answers 200. Every decision is
// attested, like the in-process enforcement point's.
package pdp

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strconv"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/shutdown"
)

// Source names this function in the events it publishes.
const Source = "//waooaw/pdp"

var (
	attester  *policy.Attester
	closeSink = func() {}
)

func init() {
	sink, closer, err := newSink(context.Background())
	if err != nil {
		log.Fatalf("pdp: %v", err)
	}
	attester, closeSink = policy.NewAttester(sink), closer
	opts, err := envOptions()
	if err != nil {
		log.Fatalf("pdp: %v", err)
	}
	h, err := Setup(append(opts, policy.WithAttester(attester))...)
	if err != nil {
		// A policy that does not compile stops the function at start; the
		// error names file:line.
		log.Fatalf("pdp: %v", err)
	}
	functions.HTTP("PDP", h.ServeHTTP)
	shutdown.OnSIGTERM(slog.Default(), Shutdown)
}

// newSink publishes attestations on policy_attestations when
// GOOGLE_CLOUD_PROJECT is set (the emulator's when PUBSUB_EMULATOR_HOST is);
// otherwise it writes them to stdout as JSON lines.
func newSink(ctx context.Context) (policy.AttestationSink, func(), error) {
	project := os.Getenv("GOOGLE_CLOUD_PROJECT")
	if project == "" {
		return policy.NewWriterSink(os.Stdout), func() {}, nil
	}
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	ps := events.NewPubSub(c)
	return eventsink.New(ps, Source), func() {
		ps.Close()
		_ = c.Close()
	}, nil
}

// envOptions reads the optional settings: PDP_DATA_FILE, a JSON object
// whose keys replace those of data.platform (for example "engagements"), and
// PDP_CACHE_SIZE, the decision cache bound (0 disables it).
func envOptions() ([]policy.Option, error) {
	var opts []policy.Option
	if f := os.Getenv("PDP_DATA_FILE"); f != "" {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("PDP_DATA_FILE: %w", err)
		}
		var data map[string]any
		if err := json.Unmarshal(raw, &data); err != nil {
			return nil, fmt.Errorf("PDP_DATA_FILE %s: %w", f, err)
		}
		opts = append(opts, policy.WithData(data))
	}
	if v := os.Getenv("PDP_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("PDP_CACHE_SIZE %q: want a count >= 0", v)
		}
		opts = append(opts, policy.WithCacheSize(n))
	}
	return opts, nil
}

// Setup builds the handler over a new policy engine.
func Setup(opts ...policy.Option) (*Handler, error) {
	eng, err := policy.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("policy.New: %w", err)
	}
	return NewHandler(eng), nil
}

// Shutdown flushes every queued attestation, then the publisher; the
// SIGTERM handler calls it.
func Shutdown(ctx context.Context) error {
	err := attester.Close(ctx)
	closeSink()
	return err
}
