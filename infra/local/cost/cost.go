// Package cost turns what the local stack measured (units.json: what one webhook, one
// Governor decision, one agent creation and one scheduled audit check cost in billed units)
// into a monthly bill by service, at the prices and free tiers of rules/cloud_prices.yaml.
//
//	units, _ := cost.Recorded()
//	prices, _ := cost.LoadPrices(rules.FS)
//	bill, _ := cost.Month(units, prices, spec, cost.Seed)
//	err := bill.Within(100) // nil, or an error naming the total and the cap
package cost

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"

	"waooaw.dev/governance/infra/local/infraspec"
	sharedrules "waooaw.dev/governance/shared/rules"
)

// DaysPerMonth is the month a bill covers.
const DaysPerMonth = 30

// The things the platform does that a workload counts. Each has its units in units.json.
const (
	Webhook       = "webhook"        // a signed client webhook through the gateway, and all it sets going
	Decision      = "decision"       // a Governor's decision, and the process it resumes until its next wait
	AgentCreation = "agent_creation" // an agent request, submit to deployed, its Governor approval included
	AuditCheck    = "audit_check"    // one run of the guardian's scheduled audit check
)

// Units is units.json: per thing, the billed units one of it cost on the local stack.
type Units struct {
	// MeasuredOn is the date of the measurement; Command the command that wrote the file.
	MeasuredOn string `json:"measured_on"`
	Command    string `json:"command"`
	// Samples is how many of each thing were run to measure it.
	Samples map[string]int `json:"samples"`
	// Per holds, per thing, its counts: functions.<name>.{invocations,billed_ms},
	// workflows.{internal,external}_steps, pubsub.billed_bytes (published and delivered),
	// firestore.{reads,writes,deletes,write_bytes}, secretmanager.accesses, logging.bytes,
	// ai.{input,output}_tokens.
	Per map[string]map[string]float64 `json:"per"`
}

//go:embed units.json
var recorded []byte

// Recorded is the checked-in units.json.
func Recorded() (Units, error) { return ParseUnits(recorded) }

// ParseUnits decodes a units.json and checks every thing a bill needs is there.
func ParseUnits(b []byte) (Units, error) {
	var u Units
	if err := json.Unmarshal(b, &u); err != nil {
		return Units{}, fmt.Errorf("cost: units.json: %w", err)
	}
	for _, k := range []string{Webhook, Decision, AgentCreation, AuditCheck} {
		if len(u.Per[k]) == 0 {
			return Units{}, fmt.Errorf("cost: units.json: no units for %q", k)
		}
	}
	return u, nil
}

// Price is one row of rules/cloud_prices.yaml.
type Price struct {
	SKU, Unit        string
	USD, Per, Free   float64
	FreePer          string // day or month
	PricedOn, Source string
}

// FreePerMonth is the free tier over a month.
func (p Price) FreePerMonth() float64 {
	if p.FreePer == "day" {
		return p.Free * DaysPerMonth
	}
	return p.Free
}

// Prices is the price of every SKU a bill uses.
type Prices map[string]Price

// SKUs are the rows a bill needs from cloud_prices.
var SKUs = []string{
	"functions.requests", "functions.vcpu_seconds", "functions.gib_seconds",
	"workflows.internal_steps", "workflows.external_steps", "pubsub.throughput_bytes",
	"firestore.reads", "firestore.writes", "firestore.deletes", "firestore.storage_gib_months",
	"secretmanager.accesses", "secretmanager.active_versions", "logging.bytes", "scheduler.jobs",
}

// ErrBadPrice is wrapped by every error about a price row.
var ErrBadPrice = errors.New("cost: bad price")

// LoadPrices loads the decision tables of fsys (rules.FS) and reads cloud_prices for
// every SKU a bill needs: a SKU without a row, a negative price or a zero `per` fails.
func LoadPrices(fsys fs.FS) (Prices, error) {
	set, err := sharedrules.Load(fsys)
	if err != nil {
		return nil, fmt.Errorf("cost: load rules: %w", err)
	}
	out := Prices{}
	for _, sku := range SKUs {
		res, err := set.Evaluate("cloud_prices", map[string]any{"sku": sku})
		if err != nil {
			return nil, fmt.Errorf("cost: cloud_prices %s: %w", sku, err)
		}
		if len(res.Matches) == 0 {
			return nil, fmt.Errorf("%w: cloud_prices has no row for %s", ErrBadPrice, sku)
		}
		t := res.Matches[0].Then
		p := Price{SKU: sku}
		p.Unit, _ = t["unit"].(string)
		p.USD, _ = t["usd"].(float64)
		p.Per, _ = t["per"].(float64)
		p.Free, _ = t["free"].(float64)
		p.FreePer, _ = t["free_per"].(string)
		p.PricedOn, _ = t["priced_on"].(string)
		p.Source, _ = t["source"].(string)
		switch {
		case p.USD < 0 || p.Per <= 0 || p.Free < 0:
			return nil, fmt.Errorf("%w: %s: usd %v per %v free %v", ErrBadPrice, sku, p.USD, p.Per, p.Free)
		case p.FreePer != "day" && p.FreePer != "month":
			return nil, fmt.Errorf("%w: %s: free_per %q, want day or month", ErrBadPrice, sku, p.FreePer)
		case p.PricedOn == "" || !strings.HasPrefix(p.Source, "https://"):
			return nil, fmt.Errorf("%w: %s: every price needs its date and its page", ErrBadPrice, sku)
		}
		out[sku] = p
	}
	return out, nil
}

// Workload is how much of each thing a month holds.
type Workload struct {
	Name           string
	WebhooksPerDay float64
	Decisions      float64 // a month
	Creations      float64 // a month
}

// The three workloads `make cost` bills: idle, the seed's, and ten times the seed's.
var (
	Idle = Workload{Name: "idle"}
	Seed = Workload{Name: "seed workload", WebhooksPerDay: 100000, Decisions: 200, Creations: 20}
	Ten  = Workload{Name: "10x seed workload", WebhooksPerDay: 1000000, Decisions: 2000, Creations: 200}
)

// SecretReadsPerMonth bounds the gateway's webhook-key reads: each key is cached 5 minutes
// (functions/gateway), so one instance reads a client's key at most 12 times an hour.
const SecretReadsPerMonth = 12 * 24 * DaysPerMonth

// Line is one line of a bill.
type Line struct {
	Service  string
	SKU      string
	Quantity float64
	Unit     string
	Free     float64 // the free tier used
	USD      float64
	Note     string
}

// Bill is a month of one workload.
type Bill struct {
	Workload Workload
	Lines    []Line
	AITokens float64 // input and output tokens (priced by rules/ai_models.yaml)
	AIUSD    float64
}

// Total is the bill's sum.
func (b Bill) Total() float64 {
	t := b.AIUSD
	for _, l := range b.Lines {
		t += l.USD
	}
	return t
}

// ErrOverCap is wrapped by Within's error.
var ErrOverCap = errors.New("cost: monthly bill over the cap")

// Within fails when the bill's total passes capUSD, naming both.
func (b Bill) Within(capUSD float64) error {
	if t := b.Total(); t > capUSD {
		return fmt.Errorf("%w: %s projects $%.2f a month, cap $%.2f", ErrOverCap, b.Workload.Name, t, capUSD)
	}
	return nil
}

// charge is the cost of qty units at p, the free tier taken first.
func charge(p Price, qty float64) (free, usd float64) {
	free = math.Min(qty, p.FreePerMonth())
	return free, (qty - free) / p.Per * p.USD
}

// Month bills one workload: each thing's units times how many a month holds, priced.
// spec gives each function's memory and vCPU, the schedules and the secrets.
func Month(u Units, prices Prices, spec *infraspec.Spec, w Workload) (Bill, error) {
	checksPerMonth := 0.0
	for _, s := range spec.Schedules {
		every, err := s.Every()
		if err != nil {
			return Bill{}, fmt.Errorf("cost: schedule %s: %w", s.Name, err)
		}
		checksPerMonth += float64(DaysPerMonth*24*60*60) / every.Seconds()
	}
	times := map[string]float64{
		Webhook: w.WebhooksPerDay * DaysPerMonth, Decision: w.Decisions,
		AgentCreation: w.Creations, AuditCheck: checksPerMonth,
	}
	total := map[string]float64{}
	for thing, n := range times {
		for k, v := range u.Per[thing] {
			total[k] += v * n
		}
	}
	if w.WebhooksPerDay > 0 {
		// One gateway instance serves the seed's rate (about 1 webhook a second, 80 at once).
		total["secretmanager.accesses"] += SecretReadsPerMonth
	}

	var b Bill
	b.Workload = w
	add := func(service, sku string, qty float64, note string) {
		p := prices[sku]
		free, usd := charge(p, qty)
		b.Lines = append(b.Lines, Line{Service: service, SKU: sku, Quantity: qty, Unit: p.Unit, Free: free, USD: usd, Note: note})
	}
	var invocations, vcpuS, gibS float64
	for _, name := range functionNames(total) {
		fn, ok := spec.Function(name)
		if !ok {
			return Bill{}, fmt.Errorf("cost: units name function %q, not in infrastructure.yaml", name)
		}
		gib, err := memoryGiB(fn.Memory)
		if err != nil {
			return Bill{}, fmt.Errorf("cost: function %s: %w", name, err)
		}
		secs := total["functions."+name+".billed_ms"] / 1000
		invocations += total["functions."+name+".invocations"]
		vcpuS += secs * vcpus(fn, gib)
		gibS += secs * gib
	}
	add("Cloud Run functions", "functions.requests", invocations, "")
	add("Cloud Run functions", "functions.vcpu_seconds", vcpuS, "each request rounded up to 100 ms, no overlap")
	add("Cloud Run functions", "functions.gib_seconds", gibS, "")
	add("Workflows", "workflows.internal_steps", total["workflows.internal_steps"], "")
	add("Workflows", "workflows.external_steps", total["workflows.external_steps"], "callback waits")
	add("Pub/Sub", "pubsub.throughput_bytes", total["pubsub.billed_bytes"], "published + delivered, 1 KB a request at least")
	add("Firestore", "firestore.reads", total["firestore.reads"], "")
	add("Firestore", "firestore.writes", total["firestore.writes"], "")
	add("Firestore", "firestore.deletes", total["firestore.deletes"], "")
	add("Firestore", "firestore.storage_gib_months", total["firestore.write_bytes"]/(1<<30), "written this month, kept")
	add("Secret Manager", "secretmanager.accesses", total["secretmanager.accesses"], "")
	add("Secret Manager", "secretmanager.active_versions", float64(len(spec.Secrets)), "one version a secret")
	add("Cloud Logging", "logging.bytes", total["logging.bytes"], "the functions' own log lines")
	add("Cloud Scheduler", "scheduler.jobs", float64(len(spec.Schedules)), "")
	// Reviews run on the decision tables while no AI key is configured, so the measured
	// workload asks no model; a measurement that did would need its tokens priced here.
	if b.AITokens = total["ai.input_tokens"] + total["ai.output_tokens"]; b.AITokens > 0 {
		return Bill{}, fmt.Errorf("cost: %s: %.0f AI tokens measured, and the bill does not price them", w.Name, b.AITokens)
	}
	return b, nil
}

func functionNames(total map[string]float64) []string {
	seen := map[string]bool{}
	for k := range total {
		if rest, ok := strings.CutPrefix(k, "functions."); ok {
			if i := strings.LastIndexByte(rest, '.'); i > 0 {
				seen[rest[:i]] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// memoryGiB reads a Kubernetes-style quantity as Cloud Run takes it: 256Mi, 1Gi.
func memoryGiB(q string) (float64, error) {
	for suffix, div := range map[string]float64{"Mi": 1024, "Gi": 1} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("memory %q: want a positive number of Mi or Gi", q)
			}
			return v / div, nil
		}
	}
	return 0, fmt.Errorf("memory %q: want Mi or Gi", q)
}

// vcpus is what infra/terraform gives a function: a whole vCPU when it serves more than one
// request at a time (Cloud Run requires it), else the default of its memory (0.167 vCPU
// for 256 MiB, as Cloud Run functions' table gives).
func vcpus(fn infraspec.Function, gib float64) float64 {
	if fn.Concurrency > 1 {
		return 1
	}
	switch {
	case gib <= 0.125:
		return 0.083
	case gib <= 0.25:
		return 0.167
	case gib <= 0.5:
		return 0.333
	case gib <= 1:
		return 0.583
	case gib <= 2:
		return 1
	default:
		return 2
	}
}
