package devauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"waooaw.dev/governance/shared/auth"
)

// KeyPair is a signing key and its key id (the "kid" header of tokens it signs, and of its
// entry in the JWKS). The issuer and the tests of token verification share it; deployed
// functions only verify, with shared/auth.
type KeyPair struct {
	Private *rsa.PrivateKey
	KID     string
}

// GenerateKeyPair makes a fresh RSA key of auth.KeyBits; its kid is the RFC 7638 thumbprint
// of the public key.
func GenerateKeyPair() (*KeyPair, error) {
	k, err := rsa.GenerateKey(rand.Reader, auth.KeyBits)
	if err != nil {
		return nil, fmt.Errorf("devauth: rsa.GenerateKey: %w", err)
	}
	return &KeyPair{Private: k, KID: Thumbprint(&k.PublicKey)}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an RSA public key, base64url without padding.
func Thumbprint(pub *rsa.PublicKey) string {
	// Members in lexicographic order, no whitespace, as RFC 7638 section 3 requires.
	doc := fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, b64(big.NewInt(int64(pub.E)).Bytes()), b64(pub.N.Bytes()))
	sum := sha256.Sum256([]byte(doc))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// PublicJWK describes pub as an RS256 signing key with the given kid.
func PublicJWK(kid string, pub *rsa.PublicKey) auth.JWK {
	return auth.JWK{Kty: "RSA", Kid: kid, Use: "sig", Alg: "RS256", N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
}

// EncodeJWKS returns the JWKS document (JSON) publishing the public halves of pairs, to be
// served at the issuer's JWKS URL or written to a file.
func EncodeJWKS(pairs ...*KeyPair) ([]byte, error) {
	doc := auth.JWKSDoc{Keys: []auth.JWK{}}
	for _, p := range pairs {
		doc.Keys = append(doc.Keys, PublicJWK(p.KID, &p.Private.PublicKey))
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("devauth: marshal JWKS: %w", err)
	}
	return b, nil
}

// JWKS is the JWKS document of this one key.
func (p *KeyPair) JWKS() ([]byte, error) { return EncodeJWKS(p) }

// PEM encodes the private key as PKCS #8 ("PRIVATE KEY"), for a key file.
func (p *KeyPair) PEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.Private)
	if err != nil {
		return nil, fmt.Errorf("devauth: MarshalPKCS8PrivateKey: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPairPEM reads an RSA private key in PKCS #8 or PKCS #1 PEM; the kid is its thumbprint.
func ParseKeyPairPEM(b []byte) (*KeyPair, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("devauth: no PEM block in key")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("devauth: ParsePKCS8PrivateKey: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("devauth: key is %T, want RSA", k)
		}
		key = rk
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("devauth: ParsePKCS1PrivateKey: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("devauth: PEM block %q is not a private key", block.Type)
	}
	return &KeyPair{Private: key, KID: Thumbprint(&key.PublicKey)}, nil
}

// NewClaims fills the claims of a platform token valid from now for ttl.
func NewClaims(issuer, audience, subject, role, engagement string, now time.Time, ttl time.Duration) auth.Claims {
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Audience:  jwt.ClaimStrings{audience},
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role:       role,
		Engagement: engagement,
	}
}

// Sign returns c as an RS256 token with the pair's kid in its header. It does not check the
// claims, so tests can sign expired or foreign tokens.
func (p *KeyPair) Sign(c auth.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = p.KID
	s, err := t.SignedString(p.Private)
	if err != nil {
		return "", fmt.Errorf("devauth: sign token: %w", err)
	}
	return s, nil
}
