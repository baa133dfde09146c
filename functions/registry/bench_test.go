package registry_test

import (
	"net/http"
	"testing"
)

// BenchmarkHealthPush is one pushed report of a live agent that changes it (critical and
// healthy alternate, so each appends health_critical or health_ok): a transaction reading
// the projection and the report's cause, writing an event and the projection.
func BenchmarkHealthPush(b *testing.B) {
	h := newHarness(b)
	_, agent := h.live(b)
	statuses := [2]string{"critical", "healthy"}
	for i := 0; b.Loop(); i++ {
		if a := h.push(b, report(agent, engagement, statuses[i%2], at(10))); a.status != http.StatusOK {
			b.Fatalf("push: %d %s", a.status, a.raw)
		}
	}
}

// BenchmarkDeploy is one stage 7 call recorded: the request, its record and the agent's
// first event and projection in one transaction, then the audit event published.
func BenchmarkDeploy(b *testing.B) {
	h := newHarness(b)
	for b.Loop() {
		b.StopTimer()
		req := h.request(b)
		b.StartTimer()
		if a := h.post(b, "/v1/stages/deploy", deployBody(req)); a.status != http.StatusOK {
			b.Fatalf("deploy: %d %s", a.status, a.raw)
		}
	}
}
