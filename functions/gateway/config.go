package gateway

import (
	"fmt"
	"regexp"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/store"
)

// Environment variables the gateway reads (FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST
// are read by the client libraries themselves).
const (
	EnvProject    = "GOOGLE_CLOUD_PROJECT"
	EnvIssuer     = "WAOOAW_JWT_ISSUER"
	EnvAudience   = "WAOOAW_JWT_AUDIENCE"
	EnvJWKSURL    = "WAOOAW_JWKS_URL"        // http(s):// or file://
	EnvJWKS       = "WAOOAW_JWKS"            // the JWKS document itself (mounted from a secret)
	EnvSecretsDir = "WAOOAW_SECRETS_DIR"     // secrets from files; unset = Secret Manager
	EnvClients    = "WAOOAW_WEBHOOK_CLIENTS" // the allow-list of webhook client ids (required)
	// EnvWorkflowsURL is the Workflows emulator's base URL (the local stack sets it); unset,
	// the gateway uses Google's Executions API with Application Default Credentials.
	EnvWorkflowsURL = "WAOOAW_WORKFLOWS_URL"
	// EnvRegion is the region the agent_creation workflow is deployed in.
	EnvRegion = "WAOOAW_REGION"
	// EnvAgentCreationWorkflow names the workflow in full; default
	// projects/$GOOGLE_CLOUD_PROJECT/locations/$WAOOAW_REGION/workflows/agent_creation.
	EnvAgentCreationWorkflow = "WAOOAW_AGENT_CREATION_WORKFLOW"
	// EnvAuditDatabase is the Firestore database holding the audit log, which the gateway
	// only reads (verification, entries); default (default).
	EnvAuditDatabase = store.EnvAuditDatabase
)

// AgentCreationWorkflowID is the workflow's id (workflows/agent_creation.yaml).
const AgentCreationWorkflowID = "agent_creation"

// Config is what the gateway needs from its environment.
type Config struct {
	Project    string
	Issuer     string
	Audience   string
	JWKSURL    string // one of JWKSURL and JWKS is set
	JWKS       string
	SecretsDir string
	// Clients are the only webhook clients accepted; a request from any other client is
	// refused before a secret is looked up.
	Clients []string
	// WorkflowsURL is the emulator's base URL; "" is Google's Executions API.
	WorkflowsURL string
	// AgentCreationWorkflow is projects/P/locations/L/workflows/W; "" when neither it nor
	// the region is configured (agent requests then answer 503, everything else works).
	AgentCreationWorkflow string
	// AuditDatabase is the audit log's Firestore database (firestore.DefaultDatabaseID when
	// it shares the gateway's own).
	AuditDatabase string
	// ConsoleDevTokenURL is the development issuer the console's sign-in asks (local only).
	ConsoleDevTokenURL string
}

// ConfigFrom reads the configuration, naming every missing or malformed variable at once.
func ConfigFrom(env *config.Env) (Config, error) {
	c := Config{
		Project:    env.Required(EnvProject),
		Issuer:     env.Required(EnvIssuer),
		Audience:   env.Required(EnvAudience),
		SecretsDir: env.Optional(EnvSecretsDir, ""),
		Clients:    env.List(EnvClients),

		AuditDatabase: env.Optional(EnvAuditDatabase, firestore.DefaultDatabaseID),
	}
	switch {
	case env.Optional(EnvClients, "") == "":
		env.Required(EnvClients)
	case len(c.Clients) == 0:
		env.Invalid(EnvClients, "lists no client id")
	}
	for _, id := range c.Clients {
		if !clientIDRE.MatchString(id) {
			env.Invalid(EnvClients, fmt.Sprintf("%q is not 1 to 64 of [A-Za-z0-9_-]", id))
		}
	}
	if u := env.Optional(EnvWorkflowsURL, ""); u != "" {
		env.URL(EnvWorkflowsURL, u, "http", "https")
		c.WorkflowsURL = u
	}
	c.AgentCreationWorkflow = env.Optional(EnvAgentCreationWorkflow, "")
	if region := env.Optional(EnvRegion, ""); c.AgentCreationWorkflow == "" && region != "" && c.Project != "" {
		c.AgentCreationWorkflow = "projects/" + c.Project + "/locations/" + region + "/workflows/" + AgentCreationWorkflowID
	}
	if w := c.AgentCreationWorkflow; w != "" && !workflowNameRE.MatchString(w) {
		env.Invalid(EnvAgentCreationWorkflow, "not projects/P/locations/L/workflows/W")
	}
	if v := env.Optional(EnvConsoleDevToken, ""); v != "" {
		if u := env.URL(EnvConsoleDevToken, v, "http"); u != nil && !loopbackHost(u.Hostname()) {
			env.Invalid(EnvConsoleDevToken, "the development issuer is served on loopback only")
		}
		c.ConsoleDevTokenURL = v
	}
	switch name, v := env.OneOf(EnvJWKSURL, EnvJWKS); name {
	case EnvJWKSURL:
		env.URL(EnvJWKSURL, v, "http", "https", "file")
		c.JWKSURL = v
	case EnvJWKS:
		c.JWKS = v
	}
	if err := env.Err(); err != nil {
		return Config{}, err
	}
	return c, nil
}

var workflowNameRE = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/workflows/[^/]+$`)

// clientIDRE is what a webhook client id may look like: it becomes part of a secret name.
var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// WebhookSecretName is the secret holding client's webhook key.
func WebhookSecretName(client string) string { return "webhook-" + client }
