package loadtest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/loadtest"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name string
		lat  []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 0.99, 0},
		{"one", ms(7), 0.5, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.5, 50 * time.Millisecond},
		{"max", ms(hundred...), 1, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (loadtest.Result{Latencies: tc.lat}).Percentile(tc.p); got != tc.want {
				t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

// Run counts answers and errors, records a latency per answer and the decision ids, and
// sends the correlation id it is told per worker and request.
func TestRunAgainstAServer(t *testing.T) {
	var mu sync.Mutex
	corr := map[string]int{}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n++
		i := n
		corr[r.Header.Get("X-Correlation-Id")]++
		mu.Unlock()
		if string(b) != `{"input":{}}` || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Test") != "yes" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.Header.Get("X-Correlation-Id") == "w0-0" { // worker 0's first request fails
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `{"result":true,"decision_id":"d-%d"}`, i)
	}))
	defer srv.Close()
	r := loadtest.Run(context.Background(), loadtest.Target{
		Name: "fake", Method: http.MethodPost, URL: srv.URL, Body: []byte(`{"input":{}}`),
		Header: http.Header{"X-Test": {"yes"}}, Status: http.StatusOK,
		Correlation: func(w, i int) string { return fmt.Sprintf("w%d-%d", w, i) },
		DecisionIDs: loadtest.BodyDecisionID,
	}, 4, 200*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if r.Answered+r.Errors != n || r.Answered < 3 || r.Errors != 1 {
		t.Fatalf("answered %d, errors %d, server saw %d", r.Answered, r.Errors, n)
	}
	if len(r.Latencies) != r.Answered || len(r.DecisionIDs) != r.Answered {
		t.Errorf("%d latencies, %d decision ids for %d answers", len(r.Latencies), len(r.DecisionIDs), r.Answered)
	}
	if !strings.Contains(r.FirstError, "status 500") {
		t.Errorf("first error %q", r.FirstError)
	}
	for w := range 4 {
		if corr[fmt.Sprintf("w%d-0", w)] != 1 {
			t.Errorf("worker %d: first correlation id seen %d times", w, corr[fmt.Sprintf("w%d-0", w)])
		}
	}
	for i := 1; i < len(r.Latencies); i++ {
		if r.Latencies[i] < r.Latencies[i-1] {
			t.Fatal("latencies not sorted")
		}
	}
	if r.PerSecond() <= 0 || r.Percentile(0.99) > r.Max() {
		t.Errorf("rate %v, p99 %v, max %v", r.PerSecond(), r.Percentile(0.99), r.Max())
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	loadtest.WriteTable(&b, []loadtest.Result{
		{Name: "opa", Answered: 1000, Elapsed: time.Second, Latencies: []time.Duration{time.Millisecond}},
		{Name: "pdp", Answered: 2000, Elapsed: time.Second, Latencies: []time.Duration{time.Millisecond}, Errors: 1, FirstError: "boom"},
	}, 0, 1)
	for _, want := range []string{"opa", "1000", "pdp / opa", "2.00x", "pdp: first error: boom"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
