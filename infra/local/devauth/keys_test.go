package devauth

import (
	"crypto/rsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/auth"
)

func TestThumbprintRFC7638(t *testing.T) {
	// The example key of RFC 7638 section 3.1 and its published thumbprint.
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	if got, want := Thumbprint(pub), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}

// The key file and the served key set must round-trip through what shared/auth parses.
func TestKeyPairPEMAndJWKSRoundTrip(t *testing.T) {
	a, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := a.PEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKeyPairPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if back.KID != a.KID || !back.Private.Equal(a.Private) {
		t.Fatal("PEM round trip changed the key")
	}
	for _, bad := range []string{"not pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := ParseKeyPairPEM([]byte(bad)); err == nil {
			t.Errorf("ParseKeyPairPEM(%q) accepted", bad)
		}
	}
	doc, err := EncodeJWKS(a, b)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys[a.KID].Equal(&a.Private.PublicKey) || !keys[b.KID].Equal(&b.Private.PublicKey) {
		t.Fatalf("JWKS round trip: %v", keys)
	}
	if strings.Contains(string(doc), `"d"`) {
		t.Fatal("JWKS leaks the private exponent")
	}
}
