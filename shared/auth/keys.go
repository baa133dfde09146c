package auth

// KeyBits is the smallest RSA key accepted from a JWKS (and the size the dev issuer generates).
const KeyBits = 2048

// JWK is one RSA public key of a JWKS document.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// JWKSDoc is a JSON Web Key Set.
type JWKSDoc struct {
	Keys []JWK `json:"keys"`
}
