package pdp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/functions/pdp"
	"waooaw.dev/governance/infra/local/opaserver"
	"waooaw.dev/governance/policies"
	"waooaw.dev/governance/shared/policy"
)

// overrides is the data both servers get on top of the embedded documents.
var overrides = map[string]any{"engagements": map[string]any{
	"eng-1": map[string]any{"governor": "gov-1"},
	"eng-2": map[string]any{"governor": "gov-2"},
	"eng-3": map[string]any{},
}}

// opaBinary is the real opa at the embedded version, built once into the user cache by
// opaserver; a missing Go toolchain or module proxy fails the test, it never skips.
func opaBinary(t testing.TB) string {
	t.Helper()
	bin, err := opaserver.Binary(context.Background())
	if err != nil {
		t.Fatalf("cannot build opa %s: %v", opaserver.Version, err)
	}
	return bin
}

// bundleDir writes the policies (without tests) and the exact data document the engine
// mounts with the test's overrides, for `opa run`.
func bundleDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := opaserver.WriteBundle(dir, overrides); err != nil {
		t.Fatal(err)
	}
	return dir
}

// handlerFor is the pdp handler with the test data, attesting to a sink
// that accepts everything.
func handlerFor(t testing.TB, opts ...policy.Option) *pdp.Handler {
	t.Helper()
	att := policy.NewAttester(discard{})
	t.Cleanup(func() { _ = att.Close(context.Background()) })
	h, err := pdp.Setup(append([]policy.Option{policy.WithData(overrides), policy.WithAttester(att)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func startPDP(t testing.TB, opts ...policy.Option) string {
	t.Helper()
	srv := httptest.NewServer(handlerFor(t, opts...))
	t.Cleanup(srv.Close)
	return srv.URL
}

type discard struct{}

func (discard) SendAttestations(context.Context, []policy.Attestation) error { return nil }

type probe struct {
	path string
	body []byte
}

// probes generates n requests over every bundle and both rules, with fields
// left out, unknown values and wrong types mixed in.
func probes(n int) []probe {
	r := rand.New(rand.NewPCG(4, 2026))
	pick := func(vs ...any) any { return vs[r.IntN(len(vs))] }
	money := func(max float64) any { return float64(r.IntN(int(max*100)+1)) / 100 }
	// set adds k=v to m unless the coin says to leave the field out.
	set := func(m map[string]any, k string, v any) {
		if r.IntN(8) != 0 {
			m[k] = v
		}
	}
	out := make([]probe, 0, n)
	for i := range n {
		bundle := policies.Bundles[i%len(policies.Bundles)]
		rule := []string{policy.RuleDecision, policy.RuleAllow}[(i/len(policies.Bundles))%2]
		subject, resource, in := map[string]any{}, map[string]any{}, map[string]any{}
		set(subject, "id", pick("gov-1", "gov-2", "u1", "genesis", "agent-7", "t1"))
		set(subject, "role", pick("admin", "governor", "manager", "operator", "auditor", "analyst", "viewer", "pirate", "", 3))
		set(subject, "type", pick("user", "agent"))
		set(subject, "trial", r.IntN(3) == 0)
		set(subject, "engagements", pick([]any{"eng-1"}, []any{"eng-1", "eng-2"}, []any{}))
		set(subject, "data_access", pick([]any{"catalog"}, []any{"pii", "catalog"}, []any{}))
		if r.IntN(4) == 0 {
			subject["clearances"] = []any{"unmask"}
		}
		set(resource, "type", pick("task", "invoices", "billing", "subscriptions", "integration", "approval", "dataset"))
		set(resource, "engagement_id", pick("eng-1", "eng-2", "eng-3", "eng-9", ""))
		set(resource, "data_class", pick("synthetic", "production", "pii", "phi", "catalog"))
		set(resource, "critical", r.IntN(3) == 0)
		set(in, "subject", subject)
		set(in, "resource", resource)
		set(in, "action", pick("read", "list", "create", "update", "execute", "deploy", "approve", "deny", "defer", "veto", "manage", "delete", "escalate", "ai_call", "send", "launch"))
		switch bundle {
		case "governor":
			if r.IntN(2) == 0 { // a Governor deciding on their own engagement, half the time
				n := pick("1", "2").(string)
				subject["id"], resource["engagement_id"] = "gov-"+n, "eng-"+n
				in["subject"], in["resource"] = subject, resource
				in["action"] = pick("approve", "deny", "defer", "veto")
			}
		case "trial":
			u := map[string]any{}
			set(u, "tasks_today", r.IntN(13))
			set(u, "ai_spend_usd", money(6))
			set(u, "days_active", r.IntN(9))
			if r.IntN(6) == 0 { // a count no double holds: hashed rounded, decided exactly
				u["tasks_today"] = json.Number("9007199254740993")
			}
			in["trial"] = u
		case "budget":
			b := map[string]any{}
			if r.IntN(2) == 0 {
				set(b, "state", pick("normal", "alert", "suspended", "halted", "panic"))
			} else {
				set(b, "spend_ratio", money(1.2))
			}
			set(b, "agent_spend_today_usd", money(5.5))
			set(b, "estimated_cost_usd", money(0.7))
			if r.IntN(6) == 0 { // just over the $5 cap, by less than a double can tell
				b["agent_spend_today_usd"] = json.Number("5.00000000000000000001")
			}
			in["budget"] = b
		case "ai":
			q := map[string]any{}
			set(q, "provider", pick("groq", "openai", "shadow", ""))
			set(q, "estimated_cost_usd", money(0.7))
			set(q, "contains_pii", r.IntN(2) == 0)
			in["request"] = q
		case "communication":
			m := map[string]any{}
			set(m, "channel", pick("email", "sms", "slack", "webhook", "in_app", "audit", "pigeon"))
			set(m, "approved", r.IntN(2) == 0)
			set(m, "approval_id", fmt.Sprintf("ap-%d", r.IntN(50)))
			in["message"] = m
		}
		body, err := json.Marshal(map[string]any{"input": in})
		if err != nil {
			panic(err)
		}
		out = append(out, probe{path: "/v1/data/waooaw/" + bundle + "/" + rule, body: body})
	}
	return out
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}

// post returns the canonical JSON of the response's result ("<undefined>"
// when absent) and its decision_id.
func post(base string, p probe) (string, string, error) {
	resp, err := client.Post(base+p.path, "application/json", bytes.NewReader(p.body))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("%s: %d %s", p.path, resp.StatusCode, raw)
	}
	var out struct {
		Result     *any   `json:"result"`
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", "", err
	}
	if out.Result == nil {
		return "<undefined>", out.DecisionID, nil
	}
	canon, err := json.Marshal(*out.Result) // map keys sorted: a canonical form
	return string(canon), out.DecisionID, err
}

func TestPDPEqualsOPAServer(t *testing.T) {
	opaURL, pdpURL := startOPAProcess(t).url, startPDP(t)
	ps := probes(1400)
	outcomes := map[string]map[string]int{} // bundle -> outcome -> count
	for _, p := range ps {
		want, _, err := post(opaURL, p)
		if err != nil {
			t.Fatalf("opa: %v", err)
		}
		got, id, err := post(pdpURL, p)
		if err != nil {
			t.Fatalf("pdp: %v", err)
		}
		if got != want {
			t.Fatalf("%s %s\n pdp: %s\n opa: %s", p.path, p.body, got, want)
		}
		if id == "" {
			t.Fatalf("%s: pdp answered without a decision_id", p.path)
		}
		bundle := strings.Split(p.path, "/")[4]
		if outcomes[bundle] == nil {
			outcomes[bundle] = map[string]int{}
		}
		var d struct {
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal([]byte(got), &d) == nil && d.Outcome != "" {
			outcomes[bundle][d.Outcome]++
		}
	}
	// The inputs must exercise both sides of every bundle, or equality proves little.
	for _, b := range policies.Bundles {
		if outcomes[b]["deny"] == 0 || outcomes[b]["allow"]+outcomes[b]["allow_with_obligations"] == 0 {
			t.Errorf("bundle %s: generated inputs reached only %v", b, outcomes[b])
		}
	}
	t.Logf("%d inputs equal; outcomes of decision probes: %v", len(ps), outcomes)
}

// pdpBinary builds cmd/main.go: the function as it runs, in its own process.
func pdpBinary(b testing.TB) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "pdp")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd").CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd: %v\n%s", err, out)
	}
	return bin
}

// server is a decision point running in its own process.
type server struct {
	url string
	pid int
}

func startProcess(b testing.TB, name string, args, env []string, url string) server {
	b.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr // stdout (the pdp's attestation lines) is discarded
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			b.Fatalf("%s exited before serving: %v\n%s", name, err, stderr.String())
		default:
		}
		if resp, err := http.Get(url + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return server{url: url, pid: cmd.Process.Pid}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not healthy at %s\n%s", name, url, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(b testing.TB) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startPDPProcess(b testing.TB, bin string, cacheSize int) server {
	b.Helper()
	data, err := json.Marshal(overrides)
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "data.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		b.Fatal(err)
	}
	addr := freeAddr(b)
	_, port, _ := net.SplitHostPort(addr)
	return startProcess(b, bin, nil,
		[]string{"PORT=" + port, "PDP_DATA_FILE=" + file, fmt.Sprintf("PDP_CACHE_SIZE=%d", cacheSize)}, "http://"+addr)
}

// startOPAProcess runs `opa run --server` on a free loopback port.
func startOPAProcess(b testing.TB) server {
	b.Helper()
	addr := freeAddr(b)
	return startProcess(b, opaBinary(b), []string{"run", "--server", "--addr", addr, "--log-level", "error", bundleDir(b)}, nil, "http://"+addr)
}

// processCPU is a process's user+system CPU time, from /proc (Linux only;
// zero elsewhere, and the metric is then left out).
func processCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command: state is field 3; utime 14, stime 15.
	rest := string(raw[bytes.LastIndexByte(raw, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(f[11], &utime)
	fmt.Sscan(f[12], &stime)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// BenchmarkThroughput compares the pdp function (cmd/main.go, its own
// process) with `opa run --server` on the same policies, data, inputs and
// loopback, in one run: decisions per second and the server's CPU per
// decision (the latter does not depend on what else the machine runs).
// pdp-nocache disables the decision cache; pdp cycles the same 1,000 inputs,
// so after the first pass it answers from the cache.
func BenchmarkThroughput(b *testing.B) {
	ps := probes(1000)
	// Servers start once, before any timing: b.Run calls its function again
	// for every round it calibrates.
	bin := pdpBinary(b)
	targets := []struct {
		name string
		srv  server
	}{
		{"opa", startOPAProcess(b)},
		{"pdp-nocache", startPDPProcess(b, bin, 0)},
		{"pdp", startPDPProcess(b, bin, policy.DefaultCacheSize)},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			url := tg.srv.url
			for _, p := range ps[:50] { // warm connections and caches alike
				if _, _, err := post(url, p); err != nil {
					b.Fatal(err)
				}
			}
			var mu sync.Mutex
			var firstErr error
			var next atomic.Int64
			b.SetParallelism(4)
			cpu0 := processCPU(tg.srv.pid)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					if _, _, err := post(url, ps[int(i)%len(ps)]); err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						return
					}
				}
			})
			elapsed := time.Since(start)
			cpu := processCPU(tg.srv.pid) - cpu0
			if firstErr != nil {
				b.Fatal(firstErr)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-µs/decision")
			}
		})
	}
}
