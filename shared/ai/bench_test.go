package ai_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"waooaw.dev/governance/infra/local/aiemu"
)

// percentiles reports the p50 and p99 of per-call durations in microseconds.
func percentiles(b *testing.B, d []time.Duration) {
	slices.Sort(d)
	if len(d) == 0 {
		return
	}
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkAsk is one call through the router against aiemu: key lookup (files), route,
// the caps' reservation and settlement (two Firestore transactions on the emulator), the
// request, and the spend event published (Pub/Sub emulator). BenchmarkBareClient is the
// same request with openai-go alone; the difference is the router's overhead.
func BenchmarkAsk(b *testing.B) {
	f := newFixture(b, setup{keys: map[string][]string{"genesis": {"groq", "openai"}}})
	ctx := context.Background()
	var d []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		if _, err := f.router.Ask(ctx, call("genesis", fmt.Sprintf("bench-%d", i), "summarise", 100)); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
		i++
	}
	percentiles(b, d)
}

func BenchmarkBareClient(b *testing.B) {
	srv := httptest.NewServer(aiemu.New("groq"))
	b.Cleanup(srv.Close)
	c := openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey(testKey("genesis", "groq")), option.WithMaxRetries(0))
	ctx := context.Background()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You review agent requests."), openai.UserMessage("Review request bench.")}
	var d []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-3.1-8b-instant", Messages: msgs, MaxCompletionTokens: openai.Int(100)}); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	percentiles(b, d)
}
