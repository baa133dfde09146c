package apiclient

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/infra/local/stack"
)

// Local is a client of the stack `make run` keeps under a state folder, with the development
// token issuer and webhook secret that stack trusts.
type Local struct {
	*Client
	Issuer *devauth.Issuer
}

// OpenLocal reads the running stack's endpoints.json under stateDir (default <root>/.local).
func OpenLocal(root, stateDir string) (*Local, error) {
	if stateDir == "" {
		stateDir = filepath.Join(root, ".local")
	}
	b, err := os.ReadFile(filepath.Join(stateDir, stack.EndpointsFile))
	if err != nil {
		return nil, fmt.Errorf("apiclient: is the stack running (make run)? %w", err)
	}
	var ep struct {
		Gateway   string `json:"gateway"`
		Workflows string `json:"workflows"`
		Control   string `json:"control"`
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		return nil, fmt.Errorf("apiclient: %s: %w", stack.EndpointsFile, err)
	}
	spec, err := stack.LoadSpec(root)
	if err != nil {
		return nil, err
	}
	iss, err := stack.Issuer(spec, stateDir)
	if err != nil {
		return nil, err
	}
	secret, err := os.ReadFile(filepath.Join(stateDir, "secrets", "webhook-"+stack.WebhookClient))
	if err != nil {
		return nil, fmt.Errorf("apiclient: webhook secret: %w", err)
	}
	return &Local{
		Client: &Client{Gateway: ep.Gateway, Workflows: ep.Workflows, Control: ep.Control,
			WebhookClient: stack.WebhookClient, WebhookSecret: []byte(strings.TrimSpace(string(secret)))},
		Issuer: iss,
	}, nil
}

// As returns a client that acts as subject with role in engagement ("" for none).
func (l *Local) As(role, subject, engagement string) (*Client, error) {
	tok, err := l.Issuer.Token(subject, role, engagement, 2*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("apiclient: token: %w", err)
	}
	return l.Client.As(tok), nil
}
