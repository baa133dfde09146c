package e2e_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/cost"
	"waooaw.dev/governance/infra/local/meter"
)

var updateUnits = flag.Bool("update-units", false, "measure with larger samples and write infra/local/cost/units.json")

// unitsTolerance is how far a count measured now may stray from the recorded one before
// units.json is stale: counts are deterministic but for lookups that race a record's
// write, attestations and appends batched differently, and Pub/Sub's 1 KB minimum per
// request that batching moves. A change in what a request does moves counts by more.
const unitsTolerance = 0.25

// logBytes is the functions' log lines so far, as a counter beside the meter's: what Cloud
// Logging would ingest of them.
const logBytes = "logging.bytes"

func usageWithLogs(tb testing.TB, ctx context.Context) meter.Snapshot {
	s := settled(tb, ctx)
	files, _ := filepath.Glob(filepath.Join(shared.state, "logs", "*.log"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".log")
		if _, isFn := s.Counters["http."+name+".invocations"]; !isFn {
			continue // emulators' and the Workflows emulator's own logs
		}
		if st, err := os.Stat(f); err == nil {
			s.Counters[logBytes] += st.Size()
		}
	}
	return s
}

// TestCostUnits measures, through the running stack, what one webhook, one Governor
// decision, one agent creation and one scheduled audit check cost in billed units. With
// -update-units it writes them to infra/local/cost/units.json (`make cost-measure`);
// otherwise it measures a small sample and fails when the recorded file is stale.
func TestCostUnits(t *testing.T) {
	ctx := ctxFor(t, 10*time.Minute)
	samples := map[string]int{cost.Webhook: 30, cost.Decision: 2, cost.AgentCreation: 2, cost.AuditCheck: 1}
	if *updateUnits {
		samples = map[string]int{cost.Webhook: 300, cost.Decision: 10, cost.AgentCreation: 10, cost.AuditCheck: 3}
	}
	// Whatever earlier tests left waiting (veto windows, revisions, approvals: three days at
	// most) ends now, not inside a measurement.
	if _, err := shared.client().Advance(ctx, 4*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	p := newParty(t, ctx)
	time.Sleep(time.Second) // the new Governor reaches the gateway's policy data
	per := map[string]map[string]float64{}

	// An agent creation, submit to deployed with its Governor approval (the seed path's
	// auto-approval depends on the seed's false-positive count, which other tests move); the
	// client's polls taken away.
	n := samples[cost.AgentCreation]
	before := usageWithLogs(t, ctx)
	ids := make([]string, n)
	var agent string
	for i := range n {
		sub, err := p.mgr.Submit(ctx, randomID("key-"), apiclient.LowRiskSpec(p.eng, fmt.Sprintf("Cost unit %d", i)), apiclient.WayOfWorking())
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = sub.RequestID
		r, err := p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "awaiting_approval" })
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.gov.Decide(ctx, r.Approval.ApprovalID, "approve", "cost units"); err != nil {
			t.Fatal(err)
		}
		if r, err = p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "deploying" && r.AgentID != "" }); err != nil {
			t.Fatal(err)
		}
		if err := p.l.Health(ctx, r.AgentID, p.eng, "healthy", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "deployed" }); err != nil {
			t.Fatal(err)
		}
		agent = r.AgentID
	}
	per[cost.AgentCreation] = unitsOf(withoutPolls(t, ctx, p, ids[0], before), n)

	// A webhook: the deployed agent's health report, and everything it sets going.
	n = samples[cost.Webhook]
	before = usageWithLogs(t, ctx)
	for i := range n {
		// Each report observed a second apart: a body signed twice is a replay, answered
		// from the ledger without publishing.
		if err := p.l.Health(ctx, agent, p.eng, "healthy", time.Now().Add(-time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	per[cost.Webhook] = unitsOf(meter.Diff(before, usageWithLogs(t, ctx)), n)

	// A Governor decision: from the decision to the process's next wait (its deploy's health).
	n = samples[cost.Decision]
	pending := make([]apiclient.Request, n)
	for i := range n {
		sub, err := p.mgr.Submit(ctx, randomID("key-"), apiclient.LowRiskSpec(p.eng, fmt.Sprintf("Cost decision %d", i)), apiclient.WayOfWorking())
		if err != nil {
			t.Fatal(err)
		}
		if pending[i], err = p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "awaiting_approval" }); err != nil {
			t.Fatal(err)
		}
	}
	before = usageWithLogs(t, ctx)
	for i, r := range pending {
		_, err := p.gov.Decide(ctx, r.Approval.ApprovalID, "approve", "cost units")
		if err != nil {
			t.Fatal(err)
		}
		if pending[i], err = p.mgr.WaitFor(ctx, r.RequestID, func(r apiclient.Request) bool { return r.Status == "deploying" && r.AgentID != "" }); err != nil {
			t.Fatal(err)
		}
	}
	per[cost.Decision] = unitsOf(withoutPolls(t, ctx, p, pending[0].RequestID, before), n)
	for _, r := range pending { // deployed, so that no later clock move times them out
		if err := p.l.Health(ctx, r.AgentID, p.eng, "healthy", time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	// An audit check with nothing appended since the last: what the schedule costs while idle.
	runCheck(t, ctx)
	n = samples[cost.AuditCheck]
	before = usageWithLogs(t, ctx)
	for range n {
		runCheck(t, ctx)
	}
	per[cost.AuditCheck] = unitsOf(meter.Diff(before, usageWithLogs(t, ctx)), n)
	// The guardian reads the anchors' signing key by name at every check (functions/guardian).
	per[cost.AuditCheck]["secretmanager.accesses"] = 1

	got := cost.Units{
		MeasuredOn: time.Now().UTC().Format("2006-01-02"),
		Command:    "make cost-measure",
		Samples:    samples,
		Per:        per,
	}
	for _, thing := range sortedKeys(per) {
		t.Logf("%s: %v", thing, per[thing])
	}
	if *updateUnits {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(shared.root, "infra", "local", "cost", "units.json")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	recorded, err := cost.Recorded()
	if err != nil {
		t.Fatal(err)
	}
	if stale := staleUnits(recorded, got); len(stale) > 0 {
		t.Fatalf("infra/local/cost/units.json is stale (beyond %.0f%%), run `make cost-measure`:\n%s",
			unitsTolerance*100, strings.Join(stale, "\n"))
	}
}

func runCheck(t *testing.T, ctx context.Context) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, shared.client().Control+"/v1/schedules/audit-anchor:run", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("run audit-anchor: %s", resp.Status)
	}
}

// withoutPolls is what happened since before, the cost of the client's polling of a request
// measured and taken away.
func withoutPolls(t *testing.T, ctx context.Context, p party, id string, before meter.Snapshot) meter.Snapshot {
	t.Helper()
	after := usageWithLogs(t, ctx)
	const reads = 50
	for range reads {
		if _, err := p.mgr.Get(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return minus(meter.Diff(before, after), meter.Diff(after, usageWithLogs(t, ctx)), reads)
}

// unitsOf turns the meter's counters over n of a thing into units.json's names, per one.
func unitsOf(d meter.Snapshot, n int) map[string]float64 {
	out := map[string]float64{}
	add := func(k string, v int64) {
		if v > 0 {
			out[k] += float64(v) / float64(n)
		}
	}
	for k, v := range d.Counters {
		fn, rest, ok := strings.Cut(strings.TrimPrefix(k, "http."), ".")
		switch {
		case strings.HasPrefix(k, "http.") && ok && fn != "control" && (rest == "invocations" || rest == "billed_ms"):
			add("functions."+fn+"."+rest, v)
		case k == "pubsub.publish.billed_bytes" || k == "pubsub.deliver.billed_bytes":
			add("pubsub.billed_bytes", v)
		case k == "workflows.internal_steps" || k == "workflows.external_steps", k == logBytes,
			k == "firestore.reads" || k == "firestore.writes" || k == "firestore.deletes" || k == "firestore.write_bytes":
			add(k, v)
		}
	}
	return out
}

// compared are the counts a staleness check compares: time and log text vary run to run.
func compared(thing, key string) bool {
	if strings.HasSuffix(key, ".billed_ms") || key == logBytes || key == "firestore.write_bytes" || key == "secretmanager.accesses" {
		return false
	}
	// An idle check reads every stream's head and checkpoint: how many streams the stack
	// holds depends on the tests run before it.
	return !(thing == cost.AuditCheck && key == "firestore.reads")
}

// staleUnits lists every compared count whose recorded and measured values differ by more
// than the tolerance (and by more than one unit, which small counts move by).
func staleUnits(recorded, now cost.Units) []string {
	var out []string
	for _, thing := range sortedKeys(now.Per) {
		keys := map[string]bool{}
		for k := range now.Per[thing] {
			keys[k] = true
		}
		for k := range recorded.Per[thing] {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if !compared(thing, k) {
				continue
			}
			r, m := recorded.Per[thing][k], now.Per[thing][k]
			if diff := math.Abs(r - m); diff > 1 && diff > unitsTolerance*math.Max(r, m) {
				out = append(out, fmt.Sprintf("  %s %s: recorded %.2f, measured %.2f", thing, k, r, m))
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
