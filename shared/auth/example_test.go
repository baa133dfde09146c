package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/auth"
)

// An issuer (here the dev one): one key pair, its JWKS for the verifier, a token signed with
// it and verified.
func ExampleVerifier_Verify() {
	kp, err := devauth.GenerateKeyPair()
	if err != nil {
		panic(err)
	}
	jwks, err := kp.JWKS() // what the issuer serves at its JWKS URL
	if err != nil {
		panic(err)
	}
	keys, err := auth.StaticJWKS(jwks)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier("http://issuer.local", "waooaw-governance", keys)
	if err != nil {
		panic(err)
	}
	tok, err := kp.Sign(devauth.NewClaims("http://issuer.local", "waooaw-governance", "user:ada", auth.RoleGovernor, "eng-1", time.Now(), time.Hour))
	if err != nil {
		panic(err)
	}
	c, err := v.Verify(context.Background(), tok)
	fmt.Println(c.Subject, c.Role, c.Engagement, err)
	// Output: user:ada governor eng-1 <nil>
}

// A client signs a webhook; the receiver checks the window, then the MAC.
func ExampleSignWebhook() {
	secret, body := []byte("s3cret"), []byte(`{"agent_id":"a1"}`)
	h := http.Header{}
	auth.SignWebhook(h, "dev-client", secret, body, time.Now())

	w, err := auth.ParseWebhook(h)
	if err == nil {
		err = w.CheckTime(time.Now(), auth.WebhookTolerance)
	}
	if err == nil {
		err = w.Verify(secret, body)
	}
	fmt.Println(w.Client, err)
	// Output: dev-client <nil>
}
