package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Config is what login keeps between commands, in a file only its owner may read (it holds
// a bearer token).
type Config struct {
	// Gateway is the gateway's URL, when given to login; otherwise the local stack's
	// endpoints.json names it each time, so a restarted stack on new ports is still found.
	Gateway string `json:"gateway,omitempty"`
	// Endpoints is the local stack's endpoints.json that login --local used.
	Endpoints string `json:"endpoints,omitempty"`
	Token     string `json:"token"`
	// Who the token says the caller is, for display only: the gateway checks the token.
	Subject    string `json:"subject,omitempty"`
	Role       string `json:"role,omitempty"`
	Engagement string `json:"engagement,omitempty"`
	ExpiresAt  string `json:"expires_at,omitempty"`
}

// configFile is --config, else waooaw/config.json in the user's config directory.
func (a *app) configFile() string {
	if a.configPath != "" {
		return a.configPath
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "waooaw", "config.json")
}

// loadConfig reads the config; a missing file is an empty config.
func (a *app) loadConfig() (*Config, error) {
	path := a.configFile()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, inputf("config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, inputf("config %s: %w", path, err)
	}
	return &c, nil
}

// saveConfig writes the config with mode 0600, replacing it atomically.
func (a *app) saveConfig(c *Config) error {
	path := a.configFile()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return inputf("config folder: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return inputf("config: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; said again in case a umask or platform differs.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return inputf("config: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return inputf("config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return inputf("config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return inputf("config: %w", err)
	}
	return nil
}

// endpoints is what the CLI reads of a local stack's endpoints.json.
type endpoints struct {
	Gateway  string `json:"gateway"`
	DevToken string `json:"dev_token"`
}

// endpointsFile is --endpoints, else the config's, else .local/endpoints.json in the current
// folder or the nearest one above it (the checkout `make run` runs in).
func (a *app) endpointsFile(cfg *Config) (string, error) {
	switch {
	case a.endpoints != "":
		return filepath.Abs(a.endpoints)
	case cfg.Endpoints != "":
		return cfg.Endpoints, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", inputf("working folder: %w", err)
	}
	for {
		p := filepath.Join(dir, ".local", "endpoints.json")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", inputf("no gateway: pass --gateway, log in with one, or run make run in this checkout (no .local/endpoints.json here or above)")
		}
		dir = up
	}
}

func readEndpoints(path string) (*endpoints, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, inputf("is the local stack running (make run)? %w", err)
	}
	var e endpoints
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, inputf("%s: %w", path, err)
	}
	return &e, nil
}

// gatewayURL is --gateway, else the config's, else the local stack's.
func (a *app) gatewayURL(cfg *Config) (string, error) {
	switch {
	case a.gateway != "":
		return strings.TrimRight(a.gateway, "/"), nil
	case cfg.Gateway != "":
		return strings.TrimRight(cfg.Gateway, "/"), nil
	}
	path, err := a.endpointsFile(cfg)
	if err != nil {
		return "", err
	}
	ep, err := readEndpoints(path)
	if err != nil {
		return "", err
	}
	if ep.Gateway == "" {
		return "", inputf("%s names no gateway", path)
	}
	return strings.TrimRight(ep.Gateway, "/"), nil
}

// claimsOf reads who a JWT says its bearer is, without checking it: the gateway does that.
// A token that is not a JWT shows nothing.
func claimsOf(token string) (subject, role, engagement string, exp int64) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", "", 0
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", "", 0
	}
	var c struct {
		Sub        string `json:"sub"`
		Role       string `json:"role"`
		Engagement string `json:"engagement"`
		Exp        int64  `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return "", "", "", 0
	}
	return c.Sub, c.Role, c.Engagement, c.Exp
}
