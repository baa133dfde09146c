// Package devauth is the local stack's stand-in for the identity provider: one RSA signing key
// kept on disk (so tokens survive a restart of the stack), its JWKS served over loopback HTTP,
// and tokens signed with it in the platform's claim shape. Key generation and signing live
// here rather than in shared/auth because no deployed function signs a token; the tests of
// token verification sign theirs with this package too.
package devauth

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// KeyFile is the private key's file name inside the state folder.
const KeyFile = "devauth/signing-key.pem"

// JWKSPath is where Serve publishes the key set.
const JWKSPath = "/.well-known/jwks.json"

// Issuer signs development tokens.
type Issuer struct {
	Key      *KeyPair
	Issuer   string // the iss claim the gateway expects
	Audience string // the aud claim the gateway expects
}

// LoadOrCreateKey reads the key at <stateDir>/KeyFile, creating it (mode 0600) on first use.
// Creation is exclusive, so a stack and a `token` command racing on a fresh checkout still
// end up with one key.
func LoadOrCreateKey(stateDir string) (*KeyPair, error) {
	path := filepath.Join(stateDir, KeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKeyPairPEM(b)
		if err != nil {
			return nil, fmt.Errorf("devauth: %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("devauth: read key: %w", err)
	}
	k, err := GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	pemBytes, err := k.PEM()
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("devauth: key folder: %w", err)
	}
	// Write aside, then link into place: link fails if another process got there first,
	// and then its key is the one to use.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, fmt.Errorf("devauth: temp key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("devauth: write key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("devauth: write key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateKey(stateDir)
		}
		return nil, fmt.Errorf("devauth: install key: %w", err)
	}
	return k, nil
}

// Token signs a token for subject with the platform's role and engagement claims.
func (i *Issuer) Token(subject, role, engagement string, ttl time.Duration) (string, error) {
	if subject == "" || role == "" {
		return "", errors.New("devauth: a token needs a subject and a role")
	}
	c := NewClaims(i.Issuer, i.Audience, subject, role, engagement, time.Now(), ttl)
	tok, err := i.Key.Sign(c)
	if err != nil {
		return "", fmt.Errorf("devauth: %w", err)
	}
	return tok, nil
}

// JWKSHandler serves the issuer's key set.
func (i *Issuer) JWKSHandler() (http.Handler, error) {
	doc, err := i.Key.JWKS()
	if err != nil {
		return nil, fmt.Errorf("devauth: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc) //nolint:errcheck // nothing to do if the client went away
	})
	return mux, nil
}

// Serve publishes the key set, and development tokens at TokenPath, on l until the returned
// server is shut down; the URL is the WAOOAW_JWKS_URL for the gateway.
func (i *Issuer) Serve(l net.Listener) (srv *http.Server, url string, err error) {
	jwks, err := i.JWKSHandler()
	if err != nil {
		return nil, "", err
	}
	h := http.NewServeMux()
	h.Handle("GET "+JWKSPath, jwks)
	h.Handle("POST "+TokenPath, LoopbackCORS(i.TokenHandler()))
	h.Handle("OPTIONS "+TokenPath, LoopbackCORS(i.TokenHandler()))
	srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l) //nolint:errcheck // ends with ErrServerClosed on shutdown
	return srv, "http://" + l.Addr().String() + JWKSPath, nil
}
