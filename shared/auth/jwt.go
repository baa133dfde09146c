// Package auth authenticates callers of the platform's HTTP functions: RS256 bearer tokens
// checked against a configured issuer, audience and JWKS, and HMAC-SHA256 signed webhooks.
// It only verifies tokens: keys are made and tokens signed by the issuer (locally
// infra/local/devauth, which the tests use too).
package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles, as the rbac policy names them (levels are the policy's business, not this package's).
const (
	RoleAdmin    = "admin"
	RoleGovernor = "governor"
	RoleManager  = "manager"
	RoleOperator = "operator"
	RoleAuditor  = "auditor"
	RoleAnalyst  = "analyst"
	RoleViewer   = "viewer"
)

// Roles lists every known role.
var Roles = []string{RoleAdmin, RoleGovernor, RoleManager, RoleOperator, RoleAuditor, RoleAnalyst, RoleViewer}

var (
	// ErrNoToken: the request carries no bearer token.
	ErrNoToken = errors.New("auth: no bearer token")
	// ErrInvalidToken is wrapped by every reason to refuse a token.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// Claims are the claims of a platform token.
type Claims struct {
	jwt.RegisteredClaims
	Role       string `json:"role"`
	Engagement string `json:"engagement,omitempty"`
}

// Validate is called by the jwt parser after the registered claims check out.
func (c Claims) Validate() error {
	if c.Subject == "" {
		return errors.New("sub is empty")
	}
	if !slices.Contains(Roles, c.Role) {
		return fmt.Errorf("unknown role %q", c.Role)
	}
	return nil
}

// Verifier checks tokens: RS256 only, signed by a key of the JWKS named by kid, with the
// configured iss and aud, unexpired (exp required), iat not in the future, nbf if present.
type Verifier struct {
	issuer, audience string
	keys             KeySource
	leeway           time.Duration
	now              func() time.Time
	// checks are the parser's claim checks, run again on a token found in verified.
	checks   *jwt.Validator
	verified *verifiedTokens
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithLeeway tolerates clock skew on exp, iat and nbf (default 30 s).
func WithLeeway(d time.Duration) VerifierOption { return func(v *Verifier) { v.leeway = d } }

// WithClock sets the verifier's clock, for tests.
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// NewVerifier checks tokens for issuer and audience against keys.
func NewVerifier(issuer, audience string, keys KeySource, opts ...VerifierOption) (*Verifier, error) {
	if issuer == "" || audience == "" || keys == nil {
		return nil, errors.New("auth: a verifier needs an issuer, an audience and keys")
	}
	v := &Verifier{issuer: issuer, audience: audience, keys: keys, leeway: 30 * time.Second, now: time.Now}
	for _, o := range opts {
		o(v)
	}
	v.checks = jwt.NewValidator(v.claimChecks()...)
	v.verified = newVerifiedTokens(verifiedTokensMax)
	return v, nil
}

// claimChecks are the checks of iss, aud and the times; the signature is checked apart.
func (v *Verifier) claimChecks() []jwt.ParserOption {
	return []jwt.ParserOption{
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	}
}

// maxTokenBytes bounds the work an unauthenticated caller can ask for.
const maxTokenBytes = 8 << 10

// Verify returns the token's claims, or an error wrapping ErrInvalidToken with the reason.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidToken, maxTokenBytes)
	}
	// A token seen before skips the RSA check, the most expensive step of a request, but
	// only while the same key still verifies it: its kid must name the very key that checked
	// it, and the claims are checked again against the clock.
	if e, ok := v.verified.get(token); ok {
		key, err := v.keys.Key(ctx, e.kid)
		if err == nil && key.Equal(e.key) {
			if err := v.checks.Validate(e.claims); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
			}
			c := *e.claims
			return &c, nil
		}
	}
	var claims Claims
	var kid string
	var key *rsa.PublicKey
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid header")
		}
		k, err := v.keys.Key(ctx, kid)
		key = k
		return k, err
	}, append(v.claimChecks(), jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}))...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c := claims
	v.verified.put(token, verifiedToken{kid: kid, key: key, claims: &c})
	return &claims, nil
}

// BearerToken extracts the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoToken
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: Authorization is not a bearer token", ErrInvalidToken)
	}
	return strings.TrimSpace(tok), nil
}
