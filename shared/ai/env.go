package ai

import (
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/secrets"
)

// Environment variables FromEnv reads.
const (
	EnvGroqBaseURL   = "WAOOAW_AI_GROQ_BASE_URL"   // https://api.groq.com/openai/v1 in production
	EnvOpenAIBaseURL = "WAOOAW_AI_OPENAI_BASE_URL" // https://api.openai.com/v1 in production
	EnvTimeout       = "WAOOAW_AI_TIMEOUT"         // one request's bound, a Go duration (default 20s)
)

// FromEnv builds the router a function uses from its environment: a provider for each base
// URL set. With neither set it returns (nil, nil), and the nil *Router answers every call
// with ErrNotConfigured, so callers hold an Asker either way. A malformed URL is an error
// (and recorded on env).
func FromEnv(env *config.Env, src secrets.Source, fs *firestore.Client, pub events.Publisher, opts ...Option) (*Router, error) {
	groq := env.Optional(EnvGroqBaseURL, "")
	oai := env.Optional(EnvOpenAIBaseURL, "")
	timeout := env.Duration(EnvTimeout, DefaultAttemptTimeout)
	if v := env.Optional(EnvTimeout, ""); v != "" {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return nil, fmt.Errorf("ai: %s=%q is not a positive duration", EnvTimeout, v)
		}
	}
	for name, v := range map[string]string{EnvGroqBaseURL: groq, EnvOpenAIBaseURL: oai} {
		if v != "" && env.URL(name, v, "http", "https") == nil {
			return nil, fmt.Errorf("ai: %s=%q is not an http(s) URL", name, v)
		}
	}
	if groq == "" && oai == "" {
		return nil, nil
	}
	base := []Option{WithAttemptTimeout(timeout)}
	if groq != "" {
		base = append(base, WithProvider(ProviderGroq, groq))
	}
	if oai != "" {
		base = append(base, WithProvider(ProviderOpenAI, oai))
	}
	return New(src, fs, pub, append(base, opts...)...)
}
