package devauth

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"waooaw.dev/governance/shared/auth"
)

func TestLoadOrCreateKeyPersists(t *testing.T) {
	state := t.TempDir()
	first, err := LoadOrCreateKey(state)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(state, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %o, want 600", perm)
	}
	second, err := LoadOrCreateKey(state)
	if err != nil {
		t.Fatal(err)
	}
	if first.KID != second.KID || !first.Private.Equal(second.Private) {
		t.Errorf("second load made a new key (kid %s, then %s)", first.KID, second.KID)
	}
	if err := os.WriteFile(filepath.Join(state, KeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(state); err == nil {
		t.Error("a corrupt key file was accepted")
	}
}

// TestTokenVerifiesAgainstServedJWKS verifies tokens the way the gateway does: with the
// shared verifier reading the key set this package serves over HTTP.
func TestTokenVerifiesAgainstServedJWKS(t *testing.T) {
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Key: key, Issuer: "https://auth.test", Audience: "waooaw-test"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, url, err := iss.Serve(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	keys, err := auth.NewJWKS(url)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		issuer   *Issuer
		subject  string
		role     string
		ttl      time.Duration
		signErr  bool
		verifies bool
	}{
		{"good token", iss, "u1", "governor", time.Hour, false, true},
		{"expired", iss, "u1", "governor", -time.Minute, false, false},
		{"other audience", &Issuer{Key: key, Issuer: iss.Issuer, Audience: "elsewhere"}, "u1", "governor", time.Hour, false, false},
		{"key not in the set", &Issuer{Key: other, Issuer: iss.Issuer, Audience: iss.Audience}, "u1", "governor", time.Hour, false, false},
		{"no role", iss, "u1", "", time.Hour, true, false},
		{"no subject", iss, "", "governor", time.Hour, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := auth.NewVerifier(iss.Issuer, iss.Audience, keys)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.issuer.Token(c.subject, c.role, "eng-1", c.ttl)
			if (err != nil) != c.signErr {
				t.Fatalf("Token error = %v, want error %v", err, c.signErr)
			}
			if err != nil {
				return
			}
			claims, err := v.Verify(context.Background(), tok)
			if (err == nil) != c.verifies {
				t.Fatalf("Verify error = %v, want verified %v", err, c.verifies)
			}
			if err == nil && (claims.Subject != c.subject || claims.Role != c.role || claims.Engagement != "eng-1") {
				t.Errorf("claims = %+v", claims)
			}
		})
	}
}
