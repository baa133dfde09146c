package auth_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/auth"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "waooaw-governance"
)

// Key generation costs tens of milliseconds; the tests share two pairs.
var (
	keysOnce sync.Once
	kpA, kpB *devauth.KeyPair
	keysErr  error
)

func testKeys(t *testing.T) (*devauth.KeyPair, *devauth.KeyPair) {
	t.Helper()
	keysOnce.Do(func() {
		if kpA, keysErr = devauth.GenerateKeyPair(); keysErr == nil {
			kpB, keysErr = devauth.GenerateKeyPair()
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return kpA, kpB
}

func TestParseJWKS(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantN   int
		wantErr string
	}{
		{"not json", `{`, 0, "parse JWKS"},
		{"skips other key types and uses", `{"keys":[{"kty":"EC","kid":"e"},{"kty":"RSA","kid":"x","use":"enc","n":"AQ","e":"AQAB"}]}`, 0, ""},
		{"short key refused", `{"keys":[{"kty":"RSA","kid":"s","n":"` + base64.RawURLEncoding.EncodeToString(make([]byte, 128)) + `","e":"AQAB"}]}`, 0, "bits"},
		{"no kid", `{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB"}]}`, 0, "no kid"},
		{"bad exponent", `{"keys":[{"kty":"RSA","kid":"k","n":"AQ","e":"!!"}]}`, 0, "bad exponent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := auth.ParseJWKS([]byte(tt.doc))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tt.wantN {
				t.Fatalf("keys = %v, err = %v", keys, err)
			}
		})
	}
}

func TestVerifier(t *testing.T) {
	a, b := testKeys(t)
	doc, err := devauth.EncodeJWKS(a)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.StaticJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, err := auth.NewVerifier(testIssuer, testAudience, keys, auth.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	good := func() auth.Claims {
		return devauth.NewClaims(testIssuer, testAudience, "user:1", auth.RoleAuditor, "eng-1", now.Add(-time.Minute), time.Hour)
	}
	// with is a good token's claims changed by f.
	with := func(f func(*auth.Claims)) auth.Claims {
		c := good()
		f(&c)
		return c
	}
	sign := func(kp *devauth.KeyPair, c auth.Claims) string {
		tok, err := kp.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// b's key announced under a's kid: the signature must not verify.
	impostor := &devauth.KeyPair{Private: b.Private, KID: a.KID}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, good())
	hs.Header["kid"] = a.KID
	hsTok, err := hs.SignedString([]byte("shared"))
	if err != nil {
		t.Fatal(err)
	}
	noKid := jwt.NewWithClaims(jwt.SigningMethodRS256, good())
	noKidTok, err := noKid.SignedString(a.Private)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		token   string
		wantErr string // "" = valid
	}{
		{"valid", sign(a, good()), ""},
		{"expired", sign(a, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })), "expired"},
		{"expired within leeway", sign(a, with(func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-10 * time.Second)) })), ""},
		{"no exp", sign(a, with(func(c *auth.Claims) { c.ExpiresAt = nil })), "exp"},
		{"bad issuer", sign(a, with(func(c *auth.Claims) { c.Issuer = "https://evil.test" })), "issuer"},
		{"bad audience", sign(a, with(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), "audience"},
		{"not yet valid", sign(a, with(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour)) })), "not valid yet"},
		{"issued in the future", sign(a, with(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) })), "before issued"},
		{"unknown role", sign(a, with(func(c *auth.Claims) { c.Role = "root" })), "unknown role"},
		{"no subject", sign(a, with(func(c *auth.Claims) { c.Subject = "" })), "sub is empty"},
		{"unknown kid", sign(b, good()), "unknown key id"},
		{"wrong key under a known kid", sign(impostor, good()), "signature is invalid"},
		{"HS256 refused", hsTok, "signing method HS256 is invalid"},
		{"no kid", noKidTok, "no kid"},
		{"garbage", "a.b.c", "malformed"},
		{"huge", strings.Repeat("a", 9000), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second answer of a valid token comes from the verified tokens.
			c, err := v.Verify(context.Background(), tt.token)
			if c2, err2 := v.Verify(context.Background(), tt.token); (err == nil) != (err2 == nil) || !reflect.DeepEqual(c, c2) {
				t.Fatalf("second Verify = %+v, %v; first %+v, %v", c2, err2, c, err)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.Subject != "user:1" || c.Role != auth.RoleAuditor || c.Engagement != "eng-1" {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if !errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want auth.ErrInvalidToken containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestJWKSOverHTTPRotatesAndSurvivesOutage(t *testing.T) {
	a, b := testKeys(t)
	var served atomic.Pointer[[]byte]
	var fetches atomic.Int32
	var down atomic.Bool
	docA, _ := devauth.EncodeJWKS(a)
	served.Store(&docA)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write(*served.Load())
	}))
	defer srv.Close()

	now := time.Unix(1_000_000, 0)
	k, err := auth.NewJWKS(srv.URL+"/jwks.json", auth.WithRefresh(time.Hour, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	auth.SetJWKSClock(k, func() time.Time { return now })
	ctx := context.Background()

	steps := []struct {
		name        string
		advance     time.Duration
		setup       func()
		kid         string
		wantOK      bool
		wantFetches int32
	}{
		{"first use fetches", 0, nil, a.KID, true, 1},
		{"cached", time.Second, nil, a.KID, true, 1},
		{"unknown kid refetches", time.Minute, func() { d, _ := devauth.EncodeJWKS(a, b); served.Store(&d) }, b.KID, true, 2},
		{"unknown kid again is rate limited", time.Second, nil, "nope", false, 2},
		{"outage keeps old keys", 2 * time.Hour, func() { down.Store(true) }, a.KID, true, 3},
		{"recovered after min interval", time.Minute, func() { down.Store(false); d, _ := devauth.EncodeJWKS(b); served.Store(&d) }, a.KID, false, 4},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		if s.setup != nil {
			s.setup()
		}
		_, err := k.Key(ctx, s.kid)
		if (err == nil) != s.wantOK {
			t.Fatalf("%s: err = %v, want ok=%v", s.name, err, s.wantOK)
		}
		if !s.wantOK && !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("%s: err = %v, want auth.ErrUnknownKey", s.name, err)
		}
		if got := fetches.Load(); got != s.wantFetches {
			t.Fatalf("%s: fetches = %d, want %d", s.name, got, s.wantFetches)
		}
	}
}

func TestJWKSFileURLAndBadURLs(t *testing.T) {
	a, _ := testKeys(t)
	doc, _ := a.JWKS()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := auth.NewJWKS("file://" + path)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := k.Key(context.Background(), a.KID); err != nil || !pub.Equal(&a.Private.PublicKey) {
		t.Fatalf("file JWKS Key = %v, %v", pub, err)
	}
	missing, err := auth.NewJWKS("file://" + path + ".missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Key(context.Background(), a.KID); err == nil || errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("missing file: err = %v, want a read error", err)
	}
	for _, bad := range []string{"ftp://x/jwks", "file://", "::"} {
		if _, err := auth.NewJWKS(bad); err == nil {
			t.Errorf("auth.NewJWKS(%q) accepted", bad)
		}
	}
	if _, err := auth.StaticJWKS([]byte(`{"keys":[]}`)); err == nil {
		t.Error("empty static JWKS accepted")
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		err          error
	}{
		{"", "", auth.ErrNoToken},
		{"Bearer abc", "abc", nil},
		{"bearer  abc ", "abc", nil},
		{"Basic abc", "", auth.ErrInvalidToken},
		{"Bearer", "", auth.ErrInvalidToken},
		{"Bearer  ", "", auth.ErrInvalidToken},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		got, err := auth.BearerToken(r)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("auth.BearerToken(%q) = %q, %v; want %q, %v", tt.header, got, err, tt.want, tt.err)
		}
	}
}

// keySet is a KeySource whose keys the test changes.
type keySet struct {
	mu   sync.Mutex
	keys map[string]*rsa.PublicKey
}

func (k *keySet) Key(_ context.Context, kid string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

func (k *keySet) set(kid string, key *rsa.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key == nil {
		delete(k.keys, kid)
		return
	}
	k.keys[kid] = key
}

// A token verified once is answered again without the RSA check only while that holds: the
// clock still within its times, and its kid still naming the key that checked it.
func TestVerifierRemembersOnlyWhatStillHolds(t *testing.T) {
	a, b := testKeys(t)
	keys := &keySet{keys: map[string]*rsa.PublicKey{a.KID: &a.Private.PublicKey}}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	v, err := auth.NewVerifier(testIssuer, testAudience, keys, auth.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Sign(devauth.NewClaims(testIssuer, testAudience, "user:1", auth.RoleViewer, "", now, 10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		change  func()
		wantErr string
	}{
		{"first use", func() {}, ""},
		{"again", func() {}, ""},
		{"kid now names another key", func() { keys.set(a.KID, &b.Private.PublicKey) }, "signature is invalid"},
		{"kid names the key again", func() { keys.set(a.KID, &a.Private.PublicKey) }, ""},
		{"key withdrawn", func() { keys.set(a.KID, nil) }, "unknown key id"},
		{"key back", func() { keys.set(a.KID, &a.Private.PublicKey) }, ""},
		{"expired since", func() { now = now.Add(11 * time.Minute) }, "expired"},
	}
	for _, s := range steps {
		s.change()
		_, err := v.Verify(context.Background(), tok)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.wantErr != "" && (!errors.Is(err, auth.ErrInvalidToken) || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("%s: err = %v, want one containing %q", s.name, err, s.wantErr)
		}
	}
}
