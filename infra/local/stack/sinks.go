package stack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"waooaw.dev/governance/infra/local/sinks"
)

// Sink hooks: where the local notifier's webhook channels post (GET <sinks>/v1/messages?sink=
// NAME reads them; the email channel's are under sink "email").
const (
	SinkHookGovernor = "governor"
	SinkHookOnCall   = "on-call"
	// SinkEmailTo is the local email channel's recipient.
	SinkEmailTo = "governor@waooaw.local"
)

// notifySecrets are the webhook channels' signing keys the notifier reads by name, and the
// acknowledge links' key the notifier and the gateway read.
var notifySecrets = []string{"notify-webhook", "notify-webhook-2", "notification-ack-key"}

// startSinks serves the SMTP and webhook sinks on the ports they had last run, writes the
// webhooks' signing keys once, and returns the notifier's channel variables pointing at them.
func (r *run) startSinks(ports *ports, secretsDir string) (*sinks.Sinks, map[string]string, error) {
	smtpPort, _, err := ports.take("sink-smtp")
	if err != nil {
		return nil, nil, err
	}
	httpPort, _, err := ports.take("sink-http")
	if err != nil {
		return nil, nil, err
	}
	s, err := sinks.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort)), net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)))
	if err != nil {
		return nil, nil, fmt.Errorf("stack: %w", err)
	}
	for _, name := range notifySecrets {
		if err := ensureRandomSecret(secretsDir, name); err != nil {
			s.Close()
			return nil, nil, err
		}
	}
	env := map[string]string{
		"WAOOAW_CHANNEL_WEBHOOK":   s.HookURL(SinkHookGovernor),
		"WAOOAW_CHANNEL_EMAIL":     "smtp://" + s.SMTPAddr + "?from=governance@waooaw.local&to=" + SinkEmailTo,
		"WAOOAW_CHANNEL_WEBHOOK_2": s.HookURL(SinkHookOnCall),
	}
	return s, env, nil
}

// ensureRandomSecret writes 32 random bytes, hex, as the secret name unless it exists.
func ensureRandomSecret(dir, name string) error {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("stack: secret %s: %w", name, err)
	}
	if err := os.WriteFile(p, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return fmt.Errorf("stack: secret %s: %w", name, err)
	}
	return nil
}
