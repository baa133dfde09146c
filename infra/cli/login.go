package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newLogin(a *app) *cobra.Command {
	var local bool
	var tokenFile, role, subject, engagement string
	var ttl time.Duration
	c := &cobra.Command{
		Use:   "login",
		Short: "Keep a token (and the gateway) for the commands that follow",
		Long: `login keeps a bearer token in the config file (mode 0600) for the commands that follow.

Production: --token-file FILE (or - for standard input) holds the identity provider's token;
pass --gateway once, and it is kept too.

Local stack: --local asks the running stack's development issuer for a token for --role,
--subject and --engagement. The stack is found through its endpoints.json (--endpoints, else
.local/endpoints.json of this checkout), which is read again by each later command, so a
restarted stack is still found.`,
		Example: `  waooaw login --local --role governor --subject me --engagement eng-1
  gcloud auth print-identity-token | waooaw login --gateway https://gw.example --token-file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			next := &Config{}
			switch {
			case local && tokenFile != "":
				return usagef("--local and --token-file exclude each other")
			case local:
				if role == "" || subject == "" {
					return usagef("--local needs --role and --subject")
				}
				path, err := a.endpointsFile(&Config{})
				if err != nil {
					return err
				}
				ep, err := readEndpoints(path)
				if err != nil {
					return err
				}
				if ep.DevToken == "" {
					return inputf("%s names no dev_token issuer: is this stack older than the CLI?", path)
				}
				tok, err := devToken(cmd.Context(), &http.Client{Timeout: a.timeout}, ep.DevToken, role, subject, engagement, ttl)
				if err != nil {
					return err
				}
				next.Token, next.Endpoints, next.Gateway = tok, path, a.gateway
			case tokenFile != "":
				if role != "" || subject != "" || engagement != "" {
					return usagef("--role, --subject and --engagement are for --local; a production token says who you are")
				}
				tok, err := readToken(a.stdin, tokenFile)
				if err != nil {
					return err
				}
				next.Token = tok
				next.Gateway = a.gateway
				if next.Gateway == "" {
					next.Gateway = cfg.Gateway
				}
				if next.Gateway == "" {
					return usagef("--gateway is needed with a production token (none is kept yet)")
				}
			default:
				return usagef("login needs --local or --token-file")
			}
			next.Subject, next.Role, next.Engagement, next.ExpiresAt = tokenClaims(next.Token)
			if err := a.saveConfig(next); err != nil {
				return err
			}
			if a.json() {
				b, err := json.Marshal(map[string]string{"config": a.configFile(), "subject": next.Subject, "role": next.Role,
					"engagement": next.Engagement, "expires_at": next.ExpiresAt, "gateway": next.Gateway, "endpoints": next.Endpoints})
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, b)
			}
			gw := next.Gateway
			if gw == "" {
				gw = "the local stack's (" + next.Endpoints + ")"
			}
			return fields(a.stdout, "logged in as", strings.TrimSpace(next.Role+" "+next.Subject), "engagement", next.Engagement,
				"until", next.ExpiresAt, "gateway", gw, "config", a.configFile())
		},
	}
	f := c.Flags()
	f.BoolVar(&local, "local", false, "get a development token from the local stack's issuer")
	f.StringVar(&tokenFile, "token-file", "", "a file holding the identity provider's token, - for standard input")
	f.StringVar(&role, "role", "", "with --local: the role (admin, governor, manager, viewer, auditor, ...)")
	f.StringVar(&subject, "subject", "", "with --local: who you are")
	f.StringVar(&engagement, "engagement", "", "with --local: the engagement the token is scoped to")
	f.DurationVar(&ttl, "ttl", 8*time.Hour, "with --local: how long the token lasts (at most 24h)")
	return c
}

// devToken asks the local stack's development issuer for a token.
func devToken(ctx context.Context, hc *http.Client, url, role, subject, engagement string, ttl time.Duration) (string, error) {
	body, err := json.Marshal(map[string]any{"role": role, "subject": subject, "engagement": engagement, "ttl_seconds": int(ttl.Seconds())})
	if err != nil {
		return "", err
	}
	c := &client{base: url, http: hc}
	b, _, err := c.do(ctx, http.MethodPost, "", nil, body)
	if err != nil {
		return "", err
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := decodeAnswer(http.MethodPost, url, b, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", &unreachableError{fmt.Errorf("POST %s: no token in the answer", url)}
	}
	return out.Token, nil
}

// readToken reads a token from a file or, for "-", from in.
func readToken(in io.Reader, path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(in, 64<<10))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", inputf("token: %w", err)
	}
	tok := string(bytes.TrimSpace(b))
	if tok == "" || strings.ContainsAny(tok, " \n\t") {
		return "", inputf("token: %s does not hold one token", path)
	}
	return tok, nil
}

// tokenClaims is what the config shows of a token.
func tokenClaims(tok string) (subject, role, engagement, expires string) {
	subject, role, engagement, exp := claimsOf(tok)
	if exp > 0 {
		expires = time.Unix(exp, 0).UTC().Format(time.RFC3339)
	}
	return subject, role, engagement, expires
}
