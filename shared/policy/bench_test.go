package policy_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"waooaw.dev/governance/policies"
	"waooaw.dev/governance/shared/policy"
)

// discard accepts every batch, so benchmarks include queueing but no I/O.
type discard struct{}

func (discard) SendAttestations(context.Context, []policy.Attestation) error { return nil }

// thousandRoles is data with 1,000 roles (levels 1..7) and as many engagements.
func thousandRoles() map[string]any {
	roles, engagements := map[string]any{}, map[string]any{}
	for i := range 1000 {
		roles[fmt.Sprintf("role-%03d", i)] = i%7 + 1
		engagements[fmt.Sprintf("eng-%03d", i)] = map[string]any{"governor": fmt.Sprintf("gov-%03d", i)}
	}
	return map[string]any{"roles": roles, "engagements": engagements}
}

func benchInputs() []map[string]any {
	out := make([]map[string]any, 1000)
	for i := range out {
		out[i] = map[string]any{
			"subject":  map[string]any{"id": fmt.Sprintf("gov-%03d", i), "role": fmt.Sprintf("role-%03d", i), "type": "user"},
			"action":   []string{"approve", "veto", "deny", "defer"}[i%4],
			"resource": map[string]any{"type": "approval", "id": fmt.Sprintf("ap-%d", i), "engagement_id": fmt.Sprintf("eng-%03d", (i*7)%1000)},
		}
	}
	return out
}

// threadCPUMeter locks the benchmark to its OS thread; the function it
// returns reports that thread's CPU time per operation and unlocks it.
func threadCPUMeter(b *testing.B) func(ops int) {
	runtime.LockOSThread()
	start := threadCPU()
	return func(ops int) {
		defer runtime.UnlockOSThread()
		if cpu := threadCPU() - start; cpu > 0 && ops > 0 {
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(ops), "cpu-µs/op")
		}
	}
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	at := func(p float64) float64 { return float64(d[int(p*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.95), "p95-µs")
	b.ReportMetric(at(0.99), "p99-µs")
	b.ReportMetric(at(0.999), "p99.9-µs")
}

// BenchmarkDecideRBACGovernor is one request's enforcement as the gateway
// does it (DecideAll): the input hashed once into an Input on the stack,
// then rbac and governor, 1,000 roles and 1,000
// engagements in data, attested, with the cache off or on. p50/p99 are per
// request (both decisions).
func BenchmarkDecideRBACGovernor(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		size := 0
		if cached {
			name, size = "cached", policy.DefaultCacheSize
		}
		b.Run(name, func(b *testing.B) {
			att := policy.NewAttester(discard{})
			defer att.Close(context.Background())
			e := newEngine(b, policy.WithData(thousandRoles()), policy.WithCacheSize(size), policy.WithAttester(att))
			inputs := benchInputs()
			meta := policy.Meta{EnforcementPoint: "gateway", CorrelationID: "bench"}
			if cached { // warm: every input is in the cache
				for _, in := range inputs {
					_, _ = e.Decide(ctx, "rbac", "decision", in, meta)
					_, _ = e.Decide(ctx, "governor", "decision", in, meta)
				}
			}
			// The warm-up's garbage is not the measured path's: collect it
			// now, as the testing package does before every benchmark, so
			// the loop pays only for the collections its own allocations
			// cause.
			runtime.GC()
			lat := make([]time.Duration, 0, 1<<18)
			b.ReportAllocs()
			done := threadCPUMeter(b)
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				// One request: its input prepared once, then both bundles.
				var in policy.Input
				if err := in.Set(inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
				r, err := e.DecideInput(ctx, "rbac", "decision", &in, meta)
				if err != nil {
					b.Fatal(err)
				}
				g, err := e.DecideInput(ctx, "governor", "decision", &in, meta)
				if err != nil {
					b.Fatal(err)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(start))
				}
				if r.Cached != cached || g.Cached != cached {
					b.Fatalf("cached = %v/%v, want %v", r.Cached, g.Cached, cached)
				}
			}
			done(i)
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkOPAPreparedQuery is OPA's own prepared query on the same bundle
// and data, without the enforcement point's hashing, cache and attestation:
// the baseline the engine is measured against.
func BenchmarkOPAPreparedQuery(b *testing.B) {
	data, err := policy.PlatformData(policies.FS, mustRules(b), thousandRoles())
	if err != nil {
		b.Fatal(err)
	}
	mods := regoModules(b)
	opts := []func(*rego.Rego){rego.Query("data.waooaw.rbac.decision"), rego.Store(storeOf(data))}
	for name, src := range mods {
		opts = append(opts, rego.Module(name, src))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	inputs := benchInputs()
	b.ReportAllocs()
	done := threadCPUMeter(b)
	i := 0
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalInput(inputs[i%len(inputs)])); err != nil {
			b.Fatal(err)
		}
		i++
	}
	done(i)
}

// BenchmarkNew is the engine's start: parse, compile and plan the bundles,
// load the rules tables and data. A function instance pays it once, on its
// cold start.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.New(); err != nil {
			b.Fatal(err)
		}
	}
}
