package notifier

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"waooaw.dev/governance/shared/config"
)

// Environment variables the notifier reads besides GOOGLE_CLOUD_PROJECT (and the emulators'
// FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST).
const (
	// EnvWorkflowsURL is the Workflows emulator's base URL; unset, Google's Executions API.
	EnvWorkflowsURL = "WAOOAW_WORKFLOWS_URL"
	// EnvRegion is where notification_cascade is deployed; EnvWorkflow names it in full
	// instead (projects/P/locations/L/workflows/W).
	EnvRegion   = "WAOOAW_REGION"
	EnvWorkflow = "WAOOAW_NOTIFICATION_WORKFLOW"
	// EnvSecretsDir reads secrets from files (the local stack); unset, Secret Manager.
	EnvSecretsDir = "WAOOAW_SECRETS_DIR"
	// EnvGatewayURL is the gateway's public URL, for the acknowledge link in every message.
	EnvGatewayURL = "WAOOAW_GATEWAY_URL"
	// EnvChannelPrefix + a channel's upper-cased name is where that channel sends:
	// WAOOAW_CHANNEL_WEBHOOK=https://hooks.example/T/B/X,
	// WAOOAW_CHANNEL_EMAIL=smtp://[user@]host:587?from=a@example&to=b@example,c@example.
	// EnvChannelPrefix + NAME + "_SECRET" names the secret that signs (webhook) or
	// authenticates (SMTP); default notify-<name> ('_' as '-').
	EnvChannelPrefix = "WAOOAW_CHANNEL_"
)

// Config is what the notifier needs from its environment.
type Config struct {
	Project      string
	WorkflowsURL string
	Workflow     string
	SecretsDir   string
	GatewayURL   string
	Channels     map[string]ChannelSpec
}

// ChannelSpec is one channel's configuration: its URL and the secret it reads.
type ChannelSpec struct {
	Name   string
	URL    *url.URL
	Secret string
}

// ConfigFrom reads the configuration for the cascade's channel names, naming every missing
// or invalid variable at once.
func ConfigFrom(env *config.Env, channels []string) (Config, error) {
	c := Config{
		Project:      env.Required("GOOGLE_CLOUD_PROJECT"),
		WorkflowsURL: env.Optional(EnvWorkflowsURL, ""),
		SecretsDir:   env.Optional(EnvSecretsDir, ""),
		GatewayURL:   strings.TrimRight(env.Optional(EnvGatewayURL, ""), "/"),
		Workflow:     env.Optional(EnvWorkflow, ""),
		Channels:     map[string]ChannelSpec{},
	}
	if c.WorkflowsURL != "" {
		env.URL(EnvWorkflowsURL, c.WorkflowsURL, "http", "https")
	}
	if c.GatewayURL != "" {
		env.URL(EnvGatewayURL, c.GatewayURL, "http", "https")
	}
	if c.Workflow == "" {
		if region := env.Optional(EnvRegion, ""); region != "" && c.Project != "" {
			c.Workflow = "projects/" + c.Project + "/locations/" + region + "/workflows/notification_cascade"
		} else {
			env.Required(EnvWorkflow)
		}
	}
	for _, name := range channels {
		key := EnvChannelPrefix + strings.ToUpper(name)
		raw := env.Required(key)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			env.Invalid(key, "not a URL")
			continue
		}
		switch {
		case u.Scheme == "https" && u.Host != "":
		case u.Scheme == "http" && loopback(u.Hostname()):
			// a local receiver (the local stack's sink); anything else must be HTTPS
		case u.Scheme == "smtp" && u.Port() != "" && u.Query().Get("from") != "" && u.Query().Get("to") != "":
		default:
			env.Invalid(key, "want https://host/path, or smtp://[user@]host:port?from=ADDR&to=ADDR[,ADDR]")
			continue
		}
		c.Channels[name] = ChannelSpec{Name: name, URL: u,
			Secret: env.Optional(key+"_SECRET", "notify-"+strings.ReplaceAll(name, "_", "-"))}
	}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open builds the channel a spec describes; secret reads a secret's value by name.
func (cs ChannelSpec) Open(secret func(ctx context.Context, name string) ([]byte, error)) (Channel, error) {
	read := func(ctx context.Context) ([]byte, error) { return secret(ctx, cs.Secret) }
	switch cs.URL.Scheme {
	case "http", "https":
		return &Webhook{URL: cs.URL.String(), Key: read}, nil
	case "smtp":
		q := cs.URL.Query()
		e := &Email{Addr: cs.URL.Host, From: q.Get("from"), To: strings.Split(q.Get("to"), ","), User: cs.URL.User.Username()}
		if e.User != "" {
			e.Password = read
		}
		return e, nil
	}
	return nil, fmt.Errorf("notifier: channel %s: no adapter for %s", cs.Name, cs.URL.Scheme)
}
