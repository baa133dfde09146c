// Package pdp is the OPA-compatible policy decision point for callers that
// are not Go: it answers the read side of OPA's data API (GET and POST
// /v1/data/<path>: a rule, a whole package, data itself) as `opa run
// --server` does for the same policies, and GET /health answers {}. Every
// decision is attested, like the in-process enforcement point's.
package pdp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/startup"
)

// FunctionName is the entry point registered with the Functions Framework.
const FunctionName = "PDP"

// Source names this function in the events it publishes.
const Source = "//waooaw/pdp"

// Variables the pdp reads, all optional.
const (
	// EnvDataFile names a JSON object whose keys replace those of data.platform (for
	// example "engagements").
	EnvDataFile = "PDP_DATA_FILE"
	// EnvCacheSize bounds the decision cache (0 disables it).
	EnvCacheSize = "PDP_CACHE_SIZE"
	// EnvPolicyDir serves the policies of a folder laid out like policies/ (*.rego and
	// data/platform.json) instead of the embedded ones, to try a change before it ships.
	EnvPolicyDir = "PDP_POLICY_DIR"
)

// PDP is the registered entry point.
var PDP http.HandlerFunc

func init() { PDP = startup.HTTP(FunctionName, open) }

// open builds the handler: attestations go to policy_attestations when the environment
// names a project, else to stdout. A policy that does not compile stops the instance,
// naming file:line.
func open(ctx context.Context, env *startup.Env) (http.Handler, error) {
	opts, err := Options(env.Env)
	if err != nil {
		return nil, err
	}
	sink, err := newSink(ctx, env)
	if err != nil {
		return nil, err
	}
	att := policy.NewAttester(sink, policy.WithErrorHandler(func(err error) {
		env.Log.Error("pdp: attestations not yet delivered; retrying", "error", err.Error())
	}), policy.WithDropHandler(func(a policy.Attestation, err error) {
		env.Log.Error("pdp: attestation refused for good; dropped", "decision_id", a.DecisionID, "bundle", a.Bundle, "error", err.Error())
	}))
	env.OnShutdown(att.Close)
	h, err := Setup(append(opts, policy.WithAttester(att))...)
	if err != nil {
		return nil, startup.Permanent(err)
	}
	h.log = env.Log
	return h, nil
}

// newSink publishes attestations on policy_attestations when the environment names a
// project (the emulator's when PUBSUB_EMULATOR_HOST is set); otherwise it writes them to
// stdout as JSON lines.
func newSink(ctx context.Context, env *startup.Env) (policy.AttestationSink, error) {
	if env.Project == "" {
		return policy.NewWriterSink(os.Stdout), nil
	}
	c, err := pubsub.NewClient(ctx, env.Project)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	ps := events.NewPubSub(c)
	env.OnShutdown(func(context.Context) error { return c.Close() })
	env.OnShutdown(func(context.Context) error { ps.Close(); return nil })
	return eventsink.New(ps, Source), nil
}

// Options reads the pdp's optional variables into engine options, naming every bad one.
func Options(env *config.Env) ([]policy.Option, error) {
	var opts []policy.Option
	if f := env.Optional(EnvDataFile, ""); f != "" {
		data, err := readData(f)
		if err != nil {
			env.Invalid(EnvDataFile, err.Error())
		} else {
			opts = append(opts, policy.WithData(data))
		}
	}
	if env.Optional(EnvCacheSize, "") != "" {
		if n := env.Int(EnvCacheSize, 0); n < 0 {
			env.Invalid(EnvCacheSize, fmt.Sprintf("%d is not a count >= 0", n))
		} else {
			opts = append(opts, policy.WithCacheSize(n))
		}
	}
	if dir := env.Optional(EnvPolicyDir, ""); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			env.Invalid(EnvPolicyDir, fmt.Sprintf("%q is not a folder", dir))
		} else {
			opts = append(opts, policy.WithPolicies(os.DirFS(dir)))
		}
	}
	if err := env.Err(); err != nil {
		return nil, err
	}
	return opts, nil
}

func readData(file string) (map[string]any, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, nil
}

// Setup builds the handler over a new policy engine.
func Setup(opts ...policy.Option) (*Handler, error) {
	eng, err := policy.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("policy.New: %w", err)
	}
	return NewHandler(eng), nil
}
