// Package loadtest drives an HTTP endpoint with a fixed number of connections for a fixed
// time, recording every request's latency, and counts the policy attestations a run leaves on
// policy_attestations: the figures behind "attestations never throttle decisions".
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Target is one kind of request, sent again and again.
type Target struct {
	Name   string
	Method string
	URL    string
	Body   []byte      // sent with Content-Type application/json when not nil
	Header http.Header // sent with every request
	// Correlation, if set, gives request i of worker w its X-Correlation-Id.
	Correlation func(worker, i int) string
	// Status is the answer a request must get to count as answered (not an error).
	Status int
	// DecisionIDs reads the attested decision ids out of an answer; nil: none recorded.
	DecisionIDs func(h http.Header, body []byte) []string
}

// Result is what one run of a Target measured.
type Result struct {
	Name        string
	Answered    int // requests answered with Target.Status
	Errors      int // failed requests or other statuses
	FirstError  string
	Elapsed     time.Duration
	Latencies   []time.Duration // of answered requests, sorted
	DecisionIDs []string
}

// PerSecond is the rate of answered requests.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// Percentile is the latency below which p (0..1] of answered requests fall, nearest rank.
func (r Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(p*float64(n)+0.999999) - 1
	return r.Latencies[min(max(rank, 0), n-1)]
}

// Max is the slowest answered request.
func (r Result) Max() time.Duration { return r.Percentile(1) }

// worker's share of a result, merged when the run ends.
type tally struct {
	answered, errors int
	firstErr         string
	latencies        []time.Duration
	ids              []string
}

// Run sends t's request from conns workers, each on its own keep-alive connection, until d
// has passed; each sends at least one, and a request in flight when d ends still counts.
func Run(ctx context.Context, t Target, conns int, d time.Duration) Result {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true},
		Timeout:   30 * time.Second,
	}
	defer client.CloseIdleConnections()
	tallies := make([]tally, conns)
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			tl := &tallies[w]
			tl.latencies = make([]time.Duration, 0, 1<<14)
			for i := 0; ctx.Err() == nil && (i == 0 || time.Now().Before(stop)); i++ {
				t0 := time.Now()
				h, body, status, err := do(ctx, client, t, w, i)
				lat := time.Since(t0)
				if err == nil && status != t.Status {
					err = fmt.Errorf("%s %s: status %d, want %d: %.200s", t.Method, t.URL, status, t.Status, body)
				}
				if err != nil {
					tl.errors++
					if tl.firstErr == "" {
						tl.firstErr = err.Error()
					}
					continue
				}
				tl.answered++
				tl.latencies = append(tl.latencies, lat)
				if t.DecisionIDs != nil {
					tl.ids = append(tl.ids, t.DecisionIDs(h, body)...)
				}
			}
		})
	}
	wg.Wait()
	r := Result{Name: t.Name, Elapsed: time.Since(start)}
	for _, tl := range tallies {
		r.Answered += tl.answered
		r.Errors += tl.errors
		if r.FirstError == "" {
			r.FirstError = tl.firstErr
		}
		r.Latencies = append(r.Latencies, tl.latencies...)
		r.DecisionIDs = append(r.DecisionIDs, tl.ids...)
	}
	slices.Sort(r.Latencies)
	return r
}

func do(ctx context.Context, client *http.Client, t Target, worker, i int) (http.Header, []byte, int, error) {
	var body io.Reader
	if t.Body != nil {
		body = bytes.NewReader(t.Body)
	}
	req, err := http.NewRequestWithContext(ctx, t.Method, t.URL, body)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("loadtest: request: %w", err)
	}
	for k, vs := range t.Header {
		req.Header[k] = vs
	}
	if t.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.Correlation != nil {
		req.Header.Set("X-Correlation-Id", t.Correlation(worker, i))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("loadtest: read answer: %w", err)
	}
	return resp.Header, b, resp.StatusCode, nil
}

// BodyDecisionID reads "decision_id" from a JSON answer, as the pdp writes it.
func BodyDecisionID(_ http.Header, body []byte) []string {
	var a struct {
		DecisionID string `json:"decision_id"`
	}
	if json.Unmarshal(body, &a) != nil || a.DecisionID == "" {
		return nil
	}
	return []string{a.DecisionID}
}

// WriteTable prints decisions/s, p50, p99, max and errors per result, then the ratio of
// results[num] to results[den] in decisions/s (skipped when either index is out of range).
func WriteTable(w io.Writer, results []Result, den, num int) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "%-32s %12s %10s %10s %10s %8s %10s\n", "target", "decisions/s", "p50", "p99", "max", "errors", "answered")
	for _, r := range results {
		fmt.Fprintf(w, "%-32s %12.0f %10s %10s %10s %8d %10d\n", r.Name, r.PerSecond(), ms(r.Percentile(0.5)), ms(r.Percentile(0.99)), ms(r.Max()), r.Errors, r.Answered)
	}
	if den < len(results) && num < len(results) && results[den].PerSecond() > 0 {
		fmt.Fprintf(w, "%-32s %11.2fx\n", results[num].Name+" / "+results[den].Name, results[num].PerSecond()/results[den].PerSecond())
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Name, r.FirstError)
		}
	}
}
