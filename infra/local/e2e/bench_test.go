package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/meter"
)

// toVetoWindow submits a seed request and reports healthy as soon as it is deploying; it
// returns when the veto window is open.
func toVetoWindow(ctx context.Context, p party, name string, poll time.Duration) (string, time.Duration, error) {
	spec, wow := apiclient.SeedRequest(p.eng, name)
	start := time.Now()
	sub, err := p.mgr.Submit(ctx, randomID("key-"), spec, wow)
	if err != nil {
		return "", 0, err
	}
	sent := false
	var last apiclient.Request
	for {
		r, err := p.mgr.Get(ctx, sub.RequestID)
		if err == nil {
			last = r
			switch {
			case r.Status == "veto_window":
				return sub.RequestID, time.Since(start), nil
			case r.Status == "deploying" && r.AgentID != "" && !sent:
				if err := p.l.Health(ctx, r.AgentID, p.eng, "healthy", time.Now()); err != nil {
					return sub.RequestID, 0, err
				}
				sent = true
			case r.Status != "running" && r.Status != "deploying":
				return sub.RequestID, 0, fmt.Errorf("request %s ended %s (%s), stages %v", sub.RequestID, r.Status, r.Reason, outcomes(r))
			}
		}
		select {
		case <-ctx.Done():
			return sub.RequestID, 0, fmt.Errorf("request %s: last seen %s %v: %w", sub.RequestID, last.Status, outcomes(last), ctx.Err())
		case <-time.After(poll):
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// usage reads the stack's usage meter.
func usage(tb testing.TB, ctx context.Context) meter.Snapshot {
	tb.Helper()
	l := shared.client()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.Control+"/v1/usage", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var s meter.Snapshot
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("usage: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// pollPath is the meter's name for the route a client polls.
const pollPath = "http.gateway.paths.GET /v1/agent-requests/{id}.invocations"

// settled takes a snapshot once the stack has been quiet for a moment: nothing counted
// changes between two reads 300 ms apart.
func settled(tb testing.TB, ctx context.Context) meter.Snapshot {
	tb.Helper()
	prev := usage(tb, ctx)
	for {
		time.Sleep(300 * time.Millisecond)
		cur := usage(tb, ctx)
		changed := false
		for k, v := range cur.Counters {
			if !strings.HasPrefix(k, "http.control") && prev.Counters[k] != v {
				changed = true
				break
			}
		}
		if !changed {
			return cur
		}
		prev = cur
	}
}

// minus takes away from total the cost of its polls, measured as read over reads requests.
func minus(total, read meter.Snapshot, reads int) meter.Snapshot {
	polls := total.Get(pollPath)
	out := meter.Snapshot{Time: total.Time, Counters: map[string]int64{}}
	for k, v := range total.Counters {
		net := v - int64(float64(read.Get(k))/float64(reads)*float64(polls)+0.5)
		if net != 0 {
			out.Counters[k] = net
		}
	}
	return out
}

// perRequest reports what one request cost between two snapshots: the figures the cost
// model uses.
func perRequest(b *testing.B, d meter.Snapshot, n int) {
	per := d.Per(n)
	var fnCalls float64
	for k, v := range per {
		if strings.HasPrefix(k, "http.") && strings.HasSuffix(k, ".invocations") && strings.Count(k, ".") == 2 {
			fnCalls += v
		}
	}
	for _, m := range []struct{ key, unit string }{
		{"workflows.steps", "wf-steps/req"},
		{"workflows.internal_steps", "wf-internal/req"},
		{"workflows.external_steps", "wf-external/req"},
		{"workflows.http_calls", "wf-http/req"},
		{"firestore.reads", "fs-reads/req"},
		{"firestore.writes", "fs-writes/req"},
		{"firestore.deletes", "fs-deletes/req"},
		{"pubsub.publish.messages", "ps-msgs/req"},
		{"pubsub.publish.bytes", "ps-bytes/req"},
		{"pubsub.publish.billed_bytes", "ps-billed-bytes/req"},
		{"pubsub.deliver.pushed", "ps-pushes/req"},
	} {
		b.ReportMetric(per[m.key], m.unit)
	}
	b.ReportMetric(fnCalls, "fn-calls/req")
	b.Logf("per request, over %d:\n%s", n, d)
}

// BenchmarkSubmitToVetoWindow measures, on the running stack, the time from POST
// /v1/agent-requests to an open veto window on the seed path (the healthy report sent as soon
// as the request shows its agent), over 100 requests one after another.
func BenchmarkSubmitToVetoWindow(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p := newParty(b, ctx)
	const n = 100
	var lat []time.Duration
	var cost meter.Snapshot
	for range b.N {
		lat = lat[:0]
		before := usage(b, ctx)
		var last string
		for i := range n {
			id, d, err := toVetoWindow(ctx, p, fmt.Sprintf("Bench FAQ %d", i), 5*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			last = id
			lat = append(lat, d)
		}
		// The audit appends and attestations of the last requests land after their answers.
		after := settled(b, ctx)
		// The client's polling is the benchmark's, not the process's: measure what one read
		// of a request costs and take the polls away.
		const reads = 200
		for range reads {
			if _, err := p.mgr.Get(ctx, last); err != nil {
				b.Fatal(err)
			}
		}
		read := meter.Diff(after, settled(b, ctx))
		cost = minus(meter.Diff(before, after), read, reads)
		if err := verifyAll(ctx, p, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	perRequest(b, cost, n)
	b.ReportMetric(0, "ns/op")
}

// BenchmarkConcurrentRequests sends 200 seed requests at once over 10 engagements: every one
// must reach its veto window once, and every engagement's chain must verify.
func BenchmarkConcurrentRequests(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const engagements, per = 10, 20
	for range b.N {
		parties := make([]party, engagements)
		for i := range parties {
			parties[i] = newParty(b, ctx)
		}
		start := time.Now()
		var wg sync.WaitGroup
		ids := make([][]string, engagements)
		errs := make(chan error, engagements*per)
		for e := range engagements {
			ids[e] = make([]string, per)
			for i := range per {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Polled gently: 200 clients asking every few milliseconds measure the gateway,
					// not the process.
					id, _, err := toVetoWindow(ctx, parties[e], fmt.Sprintf("Crowd %d-%d", e, i), 100*time.Millisecond)
					ids[e][i] = id
					if err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Error(err)
		}
		elapsed := time.Since(start)
		seen := map[string]bool{}
		for e, p := range parties {
			for _, id := range ids[e] {
				if seen[id] {
					b.Fatalf("request id %s answered twice", id)
				}
				seen[id] = true
				r, err := p.mgr.Get(ctx, id)
				if err != nil || r.Status != "veto_window" {
					b.Fatalf("request %s: %s %v (%v)", id, r.Status, outcomes(r), err)
				}
				counts := map[int]int{}
				for _, s := range r.Stages {
					counts[s.Stage]++
				}
				for stage := 1; stage <= 6; stage++ {
					if counts[stage] != 1 {
						b.Fatalf("request %s: stage %d recorded %d times", id, stage, counts[stage])
					}
				}
				if n := executionsOf(b, ctx, id); n != 1 {
					b.Fatalf("request %s: %d executions", id, n)
				}
			}
			if err := verifyAll(ctx, p, per); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(engagements*per)/elapsed.Seconds(), "requests/s")
		b.ReportMetric(0, "ns/op")
	}
}

// verifyAll waits until the engagement's stream holds the six stage entries and the veto
// window of every request, and verifies it.
func verifyAll(ctx context.Context, p party, requests int) error {
	for {
		entries, err := p.gov.Entries(ctx, p.eng, 0)
		if err == nil {
			byReq := map[string]int{}
			for _, e := range entries {
				byReq[e.Context["request_id"]]++
			}
			ready := len(byReq) >= requests
			for _, n := range byReq {
				ready = ready && n >= 6
			}
			if ready {
				rep, err := p.gov.Verify(ctx, p.eng)
				if err != nil {
					return err
				}
				if !rep.OK {
					return fmt.Errorf("stream %s does not verify: %+v", p.eng, rep)
				}
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s never held every request's entries: %w", p.eng, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// BenchmarkCreationCost measures what creating one agent costs, end to end to deployed, on
// each path: the seed path (auto-approved, the 24 h window passing without a veto) and the
// blocking path (one Governor approval). The figures are per agent, the client's polling
// taken away; they are the unit counts a cost model multiplies.
func BenchmarkCreationCost(b *testing.B) {
	const n = 20
	paths := []struct {
		name string
		run  func(ctx context.Context, p party, i int) (string, error)
		// after runs once all n requests reached their wait (moving the clock on the seed path).
		after func(ctx context.Context) error
	}{
		{name: "seed path", run: func(ctx context.Context, p party, i int) (string, error) {
			id, _, err := toVetoWindow(ctx, p, fmt.Sprintf("Cost seed %d", i), 50*time.Millisecond)
			return id, err
		}, after: func(ctx context.Context) error {
			_, err := shared.client().Advance(ctx, 24*time.Hour+time.Minute)
			return err
		}},
		{name: "blocking path", run: func(ctx context.Context, p party, i int) (string, error) {
			sub, err := p.mgr.Submit(ctx, randomID("key-"), apiclient.LowRiskSpec(p.eng, fmt.Sprintf("Cost blocking %d", i)), apiclient.WayOfWorking())
			if err != nil {
				return "", err
			}
			r, err := p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "awaiting_approval" })
			if err != nil {
				return "", err
			}
			if _, err := p.gov.Decide(ctx, r.Approval.ApprovalID, "approve", "cost benchmark"); err != nil {
				return "", err
			}
			r, err = p.mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool { return r.Status == "deploying" && r.AgentID != "" })
			if err != nil {
				return "", err
			}
			return sub.RequestID, p.l.Health(ctx, r.AgentID, p.eng, "healthy", time.Now())
		}},
	}
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var cost meter.Snapshot
			for range b.N {
				p := newParty(b, ctx)
				time.Sleep(time.Second) // the new Governor reaches the gateway's policy data
				before := settled(b, ctx)
				ids := make([]string, n)
				for i := range n {
					id, err := path.run(ctx, p, i)
					if err != nil {
						b.Fatal(err)
					}
					ids[i] = id
				}
				if path.after != nil {
					if err := path.after(ctx); err != nil {
						b.Fatal(err)
					}
				}
				for _, id := range ids {
					if _, err := p.mgr.WaitFor(ctx, id, func(r apiclient.Request) bool { return r.Status == "deployed" }); err != nil {
						b.Fatal(err)
					}
				}
				after := settled(b, ctx)
				const reads = 100
				for range reads {
					if _, err := p.mgr.Get(ctx, ids[0]); err != nil {
						b.Fatal(err)
					}
				}
				cost = minus(meter.Diff(before, after), meter.Diff(after, settled(b, ctx)), reads)
			}
			perRequest(b, cost, n)
			b.ReportMetric(0, "ns/op")
		})
	}
}
