package gateway_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/infra/local/emulators"
)

// percentile returns the p-th percentile (0..100) of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i].Microseconds()) / 1000
}

// BenchmarkWebhookAccepted measures a signed health webhook from send to 202 on loopback:
// signature check, schema check, replay record in the Firestore emulator, two publishes to
// the Pub/Sub emulator, record marked done. Run with -benchtime=300x or so.
func BenchmarkWebhookAccepted(b *testing.B) {
	h := newHarness(b)
	h.bind(b, devClient, "eng-bench")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	send := func(i int) time.Duration {
		body := healthBody("agent-"+strconv.Itoa(i), "eng-bench", "healthy")
		r := h.webhook("health", body)
		start := time.Now()
		resp, err := client.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return d
	}
	send(-1) // connections to the emulators are opened by the first request: cold start's cost
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		lat = append(lat, send(i))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
}

// BenchmarkColdStart measures a function cold start: from starting the built gateway binary
// (env pointing at the emulators) to the first 202 of a signed webhook. Each iteration is a
// new process. Run with -benchtime=10x.
func BenchmarkColdStart(b *testing.B) {
	h := newHarness(b)
	h.bind(b, devClient, "eng-cold")
	bin := filepath.Join(b.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, "./cmd")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	jwksFile := filepath.Join(b.TempDir(), "jwks.json")
	jwks, _ := h.key.JWKS()
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	// The emulators create a project's database and topics lazily on first use, which
	// production never pays per instance: touch them once through an in-process gateway.
	if a := do(b, h.webhook("health", healthBody("agent-warm", "eng-cold", "healthy"))); a.status != http.StatusAccepted {
		b.Fatalf("warm-up: %d %s", a.status, a.raw)
	}

	var first, listen []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		port, err := emulators.FreePort()
		if err != nil {
			b.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/v1/webhooks/health", port)
		var logs bytes.Buffer
		cmd := exec.Command(bin)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		cmd.Env = append(os.Environ(),
			"PORT="+strconv.Itoa(port), "FUNCTION_TARGET="+gateway.FunctionName,
			"FIRESTORE_EMULATOR_HOST="+h.env.FirestoreHost, "PUBSUB_EMULATOR_HOST="+h.env.PubSubHost,
			gateway.EnvProject+"="+h.env.Project, gateway.EnvIssuer+"="+issuer, gateway.EnvAudience+"="+audience,
			gateway.EnvJWKSURL+"=file://"+jwksFile, gateway.EnvSecretsDir+"="+h.dir, gateway.EnvClients+"="+devClient)
		b.StartTimer()

		start := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		var listened time.Duration
		for attempt := 0; ; attempt++ {
			if time.Since(start) > 30*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatalf("no 202 within 30s; process output:\n%s", logs.String())
			}
			if listened == 0 {
				c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				c.Close()
				listened = time.Since(start)
			}
			body := healthBody(fmt.Sprintf("agent-cold-%d-%d", i, attempt), "eng-cold", "healthy")
			resp, err := client.Do(signed(url, body, devClient, devSecret, time.Now()))
			if err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				break
			}
			b.Fatalf("status %d; process output:\n%s", resp.StatusCode, logs.String())
		}
		first = append(first, time.Since(start))
		listen = append(listen, listened)

		b.StopTimer()
		cmd.Process.Kill()
		cmd.Wait()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(first)
	slices.Sort(listen)
	b.ReportMetric(percentile(first, 50), "first-202-p50-ms")
	b.ReportMetric(percentile(first, 100), "first-202-max-ms")
	b.ReportMetric(percentile(listen, 50), "listening-p50-ms")
	b.ReportMetric(0, "ns/op") // ns/op mixes in stopped time; the metrics above are the figures
}
