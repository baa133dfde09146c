package cost

import (
	"errors"
	"io/fs"
	"math"
	"strings"
	"testing"
	"testing/fstest"

	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/rules"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestCharge(t *testing.T) {
	perMillion := Price{USD: 0.40, Per: 1e6, Free: 2e6, FreePer: "month"}
	daily := Price{USD: 0.18, Per: 1e5, Free: 20000, FreePer: "day"}
	noFree := Price{USD: 0.10, Per: 1, FreePer: "month"}
	for _, tc := range []struct {
		name      string
		p         Price
		qty       float64
		free, usd float64
	}{
		{"nothing used", perMillion, 0, 0, 0},
		{"inside the free tier", perMillion, 1e6, 1e6, 0},
		{"exactly the free tier", perMillion, 2e6, 2e6, 0},
		{"past it, only the rest billed", perMillion, 3e6, 2e6, 0.40},
		{"a daily free tier is 30 days of it", daily, 600000, 600000, 0},
		{"past the daily free tier", daily, 700000, 600000, 0.18},
		{"no free tier", noFree, 3, 0, 0.30},
	} {
		free, usd := charge(tc.p, tc.qty)
		if !near(free, tc.free) || !near(usd, tc.usd) {
			t.Errorf("%s: charge(%v) = free %v, $%v; want free %v, $%v", tc.name, tc.qty, free, usd, tc.free, tc.usd)
		}
	}
}

func TestMemoryAndCPU(t *testing.T) {
	for _, tc := range []struct {
		memory      string
		concurrency int
		gib, vcpu   float64
	}{
		{"256Mi", 80, 0.25, 1}, // serving at once needs a whole vCPU
		{"256Mi", 1, 0.25, 0.167},
		{"1Gi", 1, 1, 0.583},
		{"512Mi", 1, 0.5, 0.333},
	} {
		gib, err := memoryGiB(tc.memory)
		if err != nil || gib != tc.gib {
			t.Fatalf("memoryGiB(%s) = %v, %v; want %v", tc.memory, gib, err, tc.gib)
		}
		if v := vcpus(infraspec.Function{Concurrency: tc.concurrency}, gib); v != tc.vcpu {
			t.Errorf("%s × %d: %v vCPU, want %v", tc.memory, tc.concurrency, v, tc.vcpu)
		}
	}
	for _, bad := range []string{"256", "-1Gi", "xMi", ""} {
		if _, err := memoryGiB(bad); err == nil {
			t.Errorf("memoryGiB(%q) accepted", bad)
		}
	}
}

func load(t *testing.T, fsys fs.FS) (Prices, *infraspec.Spec) {
	t.Helper()
	prices, err := LoadPrices(fsys)
	if err != nil {
		t.Fatal(err)
	}
	spec, _, err := infraspec.LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	return prices, spec
}

// The month multiplies each thing's units by how many a workload holds: webhooks a day
// times 30, the audit check every 10 minutes of infrastructure.yaml, 4,320 a month.
func TestMonthArithmetic(t *testing.T) {
	prices, spec := load(t, rules.FS)
	u := Units{Per: map[string]map[string]float64{
		Webhook:       {"functions.gateway.invocations": 1, "functions.gateway.billed_ms": 100, "pubsub.billed_bytes": 2000, "firestore.writes": 2},
		Decision:      {"workflows.internal_steps": 10},
		AgentCreation: {"workflows.external_steps": 2},
		AuditCheck:    {"functions.guardian.invocations": 1, "functions.guardian.billed_ms": 200, "secretmanager.accesses": 1},
	}}
	b, err := Month(u, prices, spec, Workload{Name: "test", WebhooksPerDay: 1000, Decisions: 3, Creations: 5})
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]Line{}
	for _, l := range b.Lines {
		lines[l.SKU] = l
	}
	for sku, want := range map[string]float64{
		"functions.requests":       30000 + 4320,
		"functions.vcpu_seconds":   30000*0.1 + 4320*0.2, // a whole vCPU (concurrency 80)
		"functions.gib_seconds":    (30000*0.1 + 4320*0.2) * 0.25,
		"pubsub.throughput_bytes":  60e6,
		"firestore.writes":         60000,
		"workflows.internal_steps": 30,
		"workflows.external_steps": 10,
		"secretmanager.accesses":   4320 + SecretReadsPerMonth,
		"scheduler.jobs":           1,
	} {
		if got := lines[sku].Quantity; !near(got, want) {
			t.Errorf("%s: quantity %v, want %v", sku, got, want)
		}
	}
	// 60,000 writes against 600,000 free a month: nothing to pay.
	if w := lines["firestore.writes"]; w.USD != 0 || w.Free != 60000 {
		t.Errorf("firestore.writes = %+v, want all free", w)
	}
	u.Per[Webhook]["ai.input_tokens"] = 10
	if _, err := Month(u, prices, spec, Seed); err == nil || !strings.Contains(err.Error(), "AI tokens") {
		t.Errorf("tokens the bill cannot price: err %v", err)
	}
}

// overshoot is rules.FS with one price of cloud_prices replaced.
func overshoot(t *testing.T, old, new string) fs.FS {
	t.Helper()
	m := fstest.MapFS{}
	names, err := fs.Glob(rules.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(rules.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		if n == "cloud_prices.yaml" {
			if !strings.Contains(string(b), old) {
				t.Fatalf("cloud_prices.yaml has no %q", old)
			}
			b = []byte(strings.Replace(string(b), old, new, 1))
		}
		m[n] = &fstest.MapFile{Data: b}
	}
	return m
}

// The seed's workload at the recorded units and today's prices fits the $100 cap, and the
// same check refuses a price table under which it would not.
func TestSeedWorkloadWithinCap(t *testing.T) {
	units, err := Recorded()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		fsys fs.FS
		over bool
	}{
		{"rules/cloud_prices.yaml", rules.FS, false},
		// Firestore writes at a hundred times their price.
		{"writes at $18 per 100,000", overshoot(t, "value: firestore.writes}\n    then: {unit: document write, usd: 0.18,", "value: firestore.writes}\n    then: {unit: document write, usd: 18,"), true},
		// No free tier and a thousand times the price of a request.
		{"requests at $400 a million", overshoot(t, "unit: request, usd: 0.40, per: 1000000, free: 2000000,", "unit: request, usd: 400, per: 1000000, free: 0,"), true},
	} {
		prices, spec := load(t, tc.fsys)
		b, err := Month(units, prices, spec, Seed)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Within(100)
		if tc.over != (err != nil) || (err != nil && !errors.Is(err, ErrOverCap)) {
			t.Errorf("%s: seed workload $%.2f, Within(100) = %v, want over the cap: %v", tc.name, b.Total(), err, tc.over)
		}
		if tc.over && err != nil && !strings.Contains(err.Error(), "cap $100.00") {
			t.Errorf("%s: the error names neither total nor cap: %v", tc.name, err)
		}
	}
}

func TestLoadPricesRefusesBadRows(t *testing.T) {
	for _, tc := range []struct{ name, old, new string }{
		{"a negative price", "unit: request, usd: 0.40,", "unit: request, usd: -0.40,"},
		{"a zero per", "usd: 0.40, per: 1000000,", "usd: 0.40, per: 0,"},
		{"no page", `source: "https://cloud.google.com/run/pricing"}`, `source: ""}`},
		{"a free tier per week", "free: 2000000, free_per: month", "free: 2000000, free_per: week"},
		{"a SKU without a row", "value: scheduler.jobs}", "value: scheduler.job}"},
	} {
		if _, err := LoadPrices(overshoot(t, tc.old, tc.new)); !errors.Is(err, ErrBadPrice) {
			t.Errorf("%s: LoadPrices = %v, want ErrBadPrice", tc.name, err)
		}
	}
}

func TestRecordedUnits(t *testing.T) {
	u, err := Recorded()
	if err != nil {
		t.Fatal(err)
	}
	if u.MeasuredOn == "" || u.Command == "" {
		t.Errorf("units.json does not say when and how it was measured: %q %q", u.MeasuredOn, u.Command)
	}
	if _, err := ParseUnits([]byte(`{"per": {"webhook": {"x": 1}}}`)); err == nil {
		t.Error("units without a decision, a creation or an audit check accepted")
	}
}
