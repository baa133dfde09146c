package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/shared/auth"
)

func TestJWKSURLSchemes(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://issuer.example/.well-known/jwks.json", true},
		{"https://10.0.0.1/jwks", true},
		{"http://127.0.0.1:8080/.well-known/jwks.json", true},
		{"http://127.9.9.9/jwks", true},
		{"http://localhost:9/jwks", true},
		{"http://[::1]:9/jwks", true},
		{"file:///etc/jwks.json", true},
		{"http://issuer.example/jwks", false},
		{"http://10.0.0.1/jwks", false},
		{"http://127.0.0.1.example/jwks", false},
		{"http://localhost.example/jwks", false},
		{"http://[::2]/jwks", false},
		{"ftp://127.0.0.1/jwks", false},
	} {
		_, err := auth.NewJWKS(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("NewJWKS(%q): %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

// TestJWKSOverHTTPS fetches over TLS, and refuses a redirect that leaves https.
func TestJWKSOverHTTPS(t *testing.T) {
	a, _ := testKeys(t)
	doc, _ := devauth.EncodeJWKS(a)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(doc) }))
	defer srv.Close()
	k, err := auth.NewJWKS(srv.URL+"/jwks.json", auth.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := k.Key(context.Background(), a.KID); err != nil || !pub.Equal(&a.Private.PublicKey) {
		t.Fatalf("Key over https = %v, %v", pub, err)
	}

	// In process, no network: https://issuer.example redirects to http://issuer.example.
	downgrade := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "https" {
			return &http.Response{StatusCode: http.StatusFound, Header: http.Header{"Location": {"http://issuer.example/jwks"}}, Body: http.NoBody, Request: r}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(string(doc))), Request: r}, nil
	})}
	k, err = auth.NewJWKS("https://issuer.example/jwks", auth.WithHTTPClient(downgrade))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(context.Background(), a.KID); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Fatalf("redirect to http: %v, want refused", err)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestJWKSOneFetchOutsideTheLock: while a refetch hangs, a key held and fresh is answered;
// the callers that need the refetch share one, each waits only as long as its context, and
// the one that gives up does not fail it for the others.
func TestJWKSOneFetchOutsideTheLock(t *testing.T) {
	a, b := testKeys(t)
	docA, _ := devauth.EncodeJWKS(a)
	docAB, _ := devauth.EncodeJWKS(a, b)
	var fetches atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fetches.Add(1) == 1 {
			w.Write(docA)
			return
		}
		<-release
		w.Write(docAB)
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	k, err := auth.NewJWKS(srv.URL+"/jwks.json", auth.WithRefresh(time.Hour, time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := k.Key(ctx, a.KID); err != nil {
		t.Fatal(err)
	}

	const waiters = 20
	impatient, giveUp := context.WithCancel(ctx)
	impatientErr := make(chan error, 1)
	go func() {
		_, err := k.Key(impatient, b.KID)
		impatientErr <- err
	}()
	for fetches.Load() < 2 { // the refetch for b has reached the server and hangs there
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Go(func() {
			pub, err := k.Key(ctx, b.KID)
			if err == nil && !pub.Equal(&b.Private.PublicKey) {
				err = errors.New("wrong key")
			}
			errs <- err
		})
	}
	if pub, err := k.Key(ctx, a.KID); err != nil || !pub.Equal(&a.Private.PublicKey) {
		t.Fatalf("held key while a fetch hangs: %v, %v", pub, err)
	}
	giveUp()
	if err := <-impatientErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller that gave up: %v", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2: the first, and one refetch for %d callers", n, waiters+1)
	}
}
