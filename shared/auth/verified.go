package auth

import (
	"crypto/rsa"
	"sync"
)

// verifiedTokensMax bounds the tokens remembered: a few per active caller.
const verifiedTokensMax = 4096

// verifiedToken is what checking a token's signature established.
type verifiedToken struct {
	kid    string
	key    *rsa.PublicKey
	claims *Claims // never changed after put
}

// verifiedTokens remembers tokens whose signature checked out, by the token's exact text.
// Only tokens that passed every check enter, so a caller cannot fill it with forgeries; when
// full it starts again empty, which costs one RSA check per caller.
type verifiedTokens struct {
	mu  sync.Mutex
	max int
	m   map[string]verifiedToken
}

func newVerifiedTokens(max int) *verifiedTokens {
	return &verifiedTokens{max: max, m: make(map[string]verifiedToken)}
}

func (c *verifiedTokens) get(token string) (verifiedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[token]
	return e, ok
}

func (c *verifiedTokens) put(token string, e verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[token] = e
}
