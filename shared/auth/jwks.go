package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// ErrUnknownKey is wrapped when no key of the set has the token's kid.
var ErrUnknownKey = errors.New("auth: unknown key id")

// KeySource finds the public key a token names in its kid header.
type KeySource interface {
	Key(ctx context.Context, kid string) (*rsa.PublicKey, error)
}

// ParseJWKS returns the RSA signing keys of a JWKS document by kid. Keys of other types or
// uses are skipped; an RSA key shorter than KeyBits is an error.
func ParseJWKS(doc []byte) (map[string]*rsa.PublicKey, error) {
	var set JWKSDoc
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("auth: parse JWKS: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for i, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		if k.Kid == "" {
			return nil, fmt.Errorf("auth: JWKS key %d has no kid", i)
		}
		n, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || len(n) == 0 {
			return nil, fmt.Errorf("auth: JWKS key %s: bad modulus", k.Kid)
		}
		e, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, fmt.Errorf("auth: JWKS key %s: bad exponent", k.Kid)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < KeyBits {
			return nil, fmt.Errorf("auth: JWKS key %s: %d bits, want at least %d", k.Kid, pub.N.BitLen(), KeyBits)
		}
		keys[k.Kid] = pub
	}
	return keys, nil
}

// JWKSOption configures a JWKS.
type JWKSOption func(*JWKS)

// WithHTTPClient sets the client used for http(s) URLs (default: 5 s timeout).
func WithHTTPClient(c *http.Client) JWKSOption { return func(k *JWKS) { k.client = c } }

// WithRefresh sets how long fetched keys are trusted before a refetch (maxAge, default 1 h)
// and the least time between two fetches triggered by an unknown kid (minInterval, default
// 30 s), which bounds what tokens with made-up kids can cost.
func WithRefresh(maxAge, minInterval time.Duration) JWKSOption {
	return func(k *JWKS) { k.maxAge, k.minInterval = maxAge, minInterval }
}

// JWKS is a KeySource reading a JWKS document from an http://, https:// or file:// URL (or
// held in memory), cached and refetched when old or when a token names an unknown kid
// (key rotation). When a refetch fails the keys already held keep working.
type JWKS struct {
	url         *url.URL // nil for a static set
	client      *http.Client
	maxAge      time.Duration
	minInterval time.Duration
	now         func() time.Time

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt
}

// NewJWKS reads keys from rawURL on first use.
func NewJWKS(rawURL string, opts ...JWKSOption) (*JWKS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
	case "file":
		if u.Path == "" {
			return nil, fmt.Errorf("auth: JWKS URL %q has no path", rawURL)
		}
	default:
		return nil, fmt.Errorf("auth: JWKS URL %q: scheme must be http, https or file", rawURL)
	}
	k := &JWKS{url: u, client: &http.Client{Timeout: 5 * time.Second}, maxAge: time.Hour, minInterval: 30 * time.Second, now: time.Now}
	for _, o := range opts {
		o(k)
	}
	return k, nil
}

// StaticJWKS holds the keys of a JWKS document given inline (for a JWKS kept as a secret).
func StaticJWKS(doc []byte) (*JWKS, error) {
	keys, err := ParseJWKS(doc)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: JWKS has no RSA signing keys")
	}
	return &JWKS{keys: keys, now: time.Now}, nil
}

// Key implements KeySource.
func (k *JWKS) Key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock() // fetches are serialised: one at a time is enough for a key set
	if k.url == nil {
		if pub, ok := k.keys[kid]; ok {
			return pub, nil
		}
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
	}
	now := k.now()
	pub, ok := k.keys[kid]
	fresh := !k.fetchedAt.IsZero() && now.Sub(k.fetchedAt) < k.maxAge
	if ok && fresh {
		return pub, nil
	}
	// With no keys at all a fetch cannot make things worse; otherwise fetches (for an old
	// set or an unknown kid) are at least minInterval apart.
	if len(k.keys) == 0 || now.Sub(k.triedAt) >= k.minInterval {
		k.triedAt = now
		keys, err := k.fetch(ctx)
		if err == nil {
			k.keys, k.fetchedAt = keys, now
		} else if len(k.keys) == 0 {
			return nil, err
		}
		// On a failed refetch the old keys stay in use until the next attempt.
	}
	if pub, ok := k.keys[kid]; ok {
		return pub, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

const maxJWKSBytes = 1 << 20

func (k *JWKS) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	var doc []byte
	if k.url.Scheme == "file" {
		b, err := os.ReadFile(k.url.Path)
		if err != nil {
			return nil, fmt.Errorf("auth: read JWKS: %w", err)
		}
		doc = b
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url.String(), nil)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS request: %w", err)
		}
		resp, err := k.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("auth: fetch JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("auth: fetch JWKS %s: status %s", k.url, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes))
		if err != nil {
			return nil, fmt.Errorf("auth: read JWKS body: %w", err)
		}
		doc = b
	}
	return ParseJWKS(doc)
}
