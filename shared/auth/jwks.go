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
	"net/netip"
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

// JWKS is a KeySource reading a JWKS document from an https:// or file:// URL (http:// only
// to a loopback host, as the local stack's development issuer serves it), or held in memory;
// cached and refetched when old or when a token names an unknown kid (key rotation). When a
// refetch fails the keys already held keep working.
//
// A fetch runs outside the lock and on a context of its own: at most one is in flight,
// callers that need it wait for it (each until its own context ends), and a caller that
// gives up does not fail it for the others. Keys held and fresh are answered meanwhile.
type JWKS struct {
	url         *url.URL // nil for a static set
	client      *http.Client
	maxAge      time.Duration
	minInterval time.Duration
	now         func() time.Time

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	fetchedAt time.Time  // last successful fetch
	triedAt   time.Time  // last attempt
	inflight  *jwksFetch // the fetch running, if any
}

// jwksFetch is one fetch, shared by every caller that waits for it.
type jwksFetch struct {
	done chan struct{} // closed once err is set and the keys stored
	err  error
}

// jwksFetchTimeout bounds a fetch that no caller's context bounds.
const jwksFetchTimeout = 10 * time.Second

// NewJWKS reads keys from rawURL on first use.
func NewJWKS(rawURL string, opts ...JWKSOption) (*JWKS, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		// Keys fetched in clear could be swapped on the way; only a loopback host is
		// beyond reach of the network.
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("auth: JWKS URL %q: http is for a loopback host only; use https", rawURL)
		}
	case "file":
		if u.Path == "" {
			return nil, fmt.Errorf("auth: JWKS URL %q has no path", rawURL)
		}
	default:
		return nil, fmt.Errorf("auth: JWKS URL %q: scheme must be https, file, or http to a loopback host", rawURL)
	}
	k := &JWKS{url: u, client: &http.Client{Timeout: 5 * time.Second}, maxAge: time.Hour, minInterval: 30 * time.Second, now: time.Now}
	for _, o := range opts {
		o(k)
	}
	return k, nil
}

// loopback reports whether host is localhost or a loopback address (127.0.0.0/8, ::1).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
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
	if k.url == nil {
		defer k.mu.Unlock()
		return k.held(kid)
	}
	now := k.now()
	pub, ok := k.keys[kid]
	fresh := !k.fetchedAt.IsZero() && now.Sub(k.fetchedAt) < k.maxAge
	if ok && fresh {
		k.mu.Unlock()
		return pub, nil
	}
	// With no keys at all a fetch cannot make things worse; otherwise fetches (for an old
	// set or an unknown kid) start at least minInterval apart.
	f := k.inflight
	if f == nil && (len(k.keys) == 0 || now.Sub(k.triedAt) >= k.minInterval) {
		f = &jwksFetch{done: make(chan struct{})}
		k.inflight, k.triedAt = f, now
		go k.refresh(f)
	}
	if f == nil {
		defer k.mu.Unlock()
		return k.held(kid)
	}
	k.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("auth: waiting for the JWKS: %w", ctx.Err())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 && f.err != nil {
		return nil, f.err
	}
	// On a failed refetch the old keys stay in use until the next attempt.
	return k.held(kid)
}

// held is the key of the set held; mu is held.
func (k *JWKS) held(kid string) (*rsa.PublicKey, error) {
	if pub, ok := k.keys[kid]; ok {
		return pub, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}

// refresh runs one fetch and stores its keys.
func (k *JWKS) refresh(f *jwksFetch) {
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	keys, err := k.fetch(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys, k.fetchedAt = keys, k.now()
	}
	f.err = err
	k.inflight = nil
	close(f.done)
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
		// A redirect must not lead off https either.
		if final := resp.Request.URL; final.Scheme != "https" && !(final.Scheme == "http" && loopback(final.Hostname())) {
			return nil, fmt.Errorf("auth: fetch JWKS %s: redirected to %s, not https", k.url, final.Redacted())
		}
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
