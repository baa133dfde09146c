package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/shared/audit"
)

// TestScheduledAuditCheck runs the guardian's audit-anchor schedule through the stack's
// control endpoint: the guardian reaches the local Cloud Storage, signs with the key the
// stack made, anchors a stream it has not seen and, next time, reads only what was appended.
func TestScheduledAuditCheck(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	shared.mu.Lock()
	b, err := os.ReadFile(filepath.Join(shared.state, stack.EndpointsFile))
	shared.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var ep stack.Endpoints
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", ep.Firestore)
	fs, err := firestore.NewClient(ctx, stack.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	app := audit.NewAppender(fs)
	stream := randomID("anchor-e2e")
	appendN := func(from, n int) {
		for i := range n {
			e := audit.Entry{EventID: fmt.Sprintf("%s-%d", stream, from+i), Time: "2026-12-01T10:00:00Z", EventType: "decision",
				ActorID: "gov-1", ActorType: "human", Action: "approve", Target: "agent-1", Result: "approved"}
			if _, err := app.AppendEntry(ctx, stream, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	type report struct {
		EntriesRead int               `json:"entries_read"`
		Breaks      []json.RawMessage `json:"breaks"`
		Anchor      string            `json:"anchor"`
		Previous    string            `json:"previous"`
	}
	run := func() report {
		t.Helper()
		resp, err := http.Post(ep.Control+"/v1/schedules/audit-anchor:run", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res stack.RunResult
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.Status != http.StatusOK {
			t.Fatalf("run: %d %+v %v", resp.StatusCode, res, err)
		}
		var rep report
		if err := json.Unmarshal([]byte(res.Body), &rep); err != nil {
			t.Fatalf("guardian answered %q: %v", res.Body, err)
		}
		if len(rep.Breaks) != 0 {
			t.Fatalf("breaks on an untouched log: %s", res.Body)
		}
		return rep
	}

	appendN(0, 5)
	first := run()
	if first.Anchor == "" || first.EntriesRead < 5 {
		t.Fatalf("first run %+v: want the new stream walked and anchored", first)
	}
	appendN(5, 3)
	second := run()
	if second.Anchor == "" || second.Previous != first.Anchor || second.EntriesRead < 4 {
		t.Fatalf("second run %+v: want 4 entries of %s read against %s", second, stream, first.Anchor)
	}
	names, err := filepath.Glob(filepath.Join(shared.state, stack.StorageDir, "*", "o", "anchors*.json"))
	if err != nil || len(names) < 2 {
		t.Fatalf("anchors in the local Cloud Storage: %q, %v", names, err)
	}
}
