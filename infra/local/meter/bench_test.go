package meter

import (
	"context"
	"net"
	"testing"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"waooaw.dev/governance/infra/local/emulators"
)

// BenchmarkProxyUnary is one small unary RPC to an in-process gRPC server, straight and
// through a proxy: the difference is what the proxy adds to every RPC.
func BenchmarkProxyUnary(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln) //nolint:errcheck // ends with Stop
	defer srv.Stop()
	p, err := New().Firestore("", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct{ name, addr string }{{"direct", ln.Addr().String()}, {"proxy", p.Addr()}} {
		b.Run(tc.name, func(b *testing.B) {
			conn, err := grpc.NewClient(tc.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			c := healthpb.NewHealthClient(conn)
			ctx := context.Background()
			for b.Loop() {
				if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirestoreGet is a document get against the Firestore emulator, straight and
// through the meter (decoding and counting included).
func BenchmarkFirestoreGet(b *testing.B) {
	env := emulators.ForTest(b)
	p, err := New().Firestore("", env.FirestoreHost)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct{ name, addr string }{{"direct", env.FirestoreHost}, {"metered", p.Addr()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.Setenv("FIRESTORE_EMULATOR_HOST", tc.addr)
			ctx := context.Background()
			c, err := firestore.NewClient(ctx, env.Project)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			doc := c.Collection("bench").Doc("one")
			if _, err := doc.Set(ctx, map[string]any{"n": 1, "s": "some text"}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := doc.Get(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
