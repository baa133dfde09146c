package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
)

// testWorkflow stands in for agent_creation.yaml with what the gateway relies on: it takes
// the argument docs/agent-creation.md gives, waits for a revision when the spec's
// agent_name is "revise", fails at once for "crash", then opens one approval (the way of
// working's kind: blocking or veto_window), awaits its callback for an hour and closes
// it, as genesis would, through the stand-in at base.
func testWorkflow(base string) string {
	return strings.ReplaceAll(`
main:
  params: [args]
  steps:
    - init:
        assign:
          - name: ${default(map.get(args.spec, "agent_name"), "")}
          - kind: ${default(map.get(args.way_of_working, "kind"), "blocking")}
    - crash:
        switch:
          - condition: ${name == "crash"}
            raise: "stage 4 could not be called"
    - revision:
        switch:
          - condition: ${name == "revise"}
            steps:
              - make_revision_callback:
                  call: events.create_callback_endpoint
                  args:
                    http_callback_method: POST
                  result: rev
              - ask_revision:
                  call: http.post
                  args:
                    url: BASE/revise
                    body:
                      request_id: ${args.request_id}
                      callback_url: ${rev.url}
              - wait_revision:
                  call: events.await_callback
                  args:
                    callback: ${rev}
                    timeout: 3600
                  result: got_rev
              - record_revision:
                  call: http.post
                  args:
                    url: BASE/revised
                    body:
                      request_id: ${args.request_id}
                      revision: ${got_rev.http_request.body}
    - make_approval_callback:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - open:
        call: http.post
        args:
          url: BASE/open
          body:
            request_id: ${args.request_id}
            engagement_id: ${args.engagement_id}
            kind: ${kind}
            callback_url: ${cb.url}
        result: opened
    - wait:
        try:
          call: events.await_callback
          args:
            callback: ${cb}
            timeout: 3600
          result: got
        except:
          as: e
          steps:
            - close_timeout:
                call: http.post
                args:
                  url: BASE/close
                  body:
                    approval_id: ${opened.body.approval_id}
                    outcome: timeout
            - timed_out:
                return: timeout
    - close:
        call: http.post
        args:
          url: BASE/close
          body:
            approval_id: ${opened.body.approval_id}
            outcome: callback
            callback: ${got.http_request.body}
    - done:
        return: ${got.http_request.body}
`, "BASE", base)
}

// genesisStandIn keeps the records genesis keeps for what the test workflow calls: the
// request's status, its revision callback, the approval and its close.
type genesisStandIn struct {
	url string
	fs  *firestore.Client

	mu        sync.Mutex
	revisions map[string]map[string]any // request id -> the revision body the workflow got
}

func newGenesisStandIn(t testing.TB, fs *firestore.Client) *genesisStandIn {
	g := &genesisStandIn{fs: fs, revisions: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func (g *genesisStandIn) revision(requestID string) map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revisions[requestID]
}

func (g *genesisStandIn) serve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RequestID    string         `json:"request_id"`
		EngagementID string         `json:"engagement_id"`
		Kind         string         `json:"kind"`
		CallbackURL  string         `json:"callback_url"`
		ApprovalID   string         `json:"approval_id"`
		Outcome      string         `json:"outcome"`
		Callback     map[string]any `json:"callback"`
		Revision     map[string]any `json:"revision"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	ctx := context.Background()
	reqRef := g.fs.Collection(agentreq.Requests).Doc(in.RequestID)
	var err error
	answer := map[string]any{}
	switch r.URL.Path {
	case "/revise":
		_, err = reqRef.Update(ctx, []firestore.Update{{Path: "status", Value: agentreq.StatusNeedsRevision}, {Path: "revision_callback", Value: in.CallbackURL}})
	case "/revised":
		g.mu.Lock()
		g.revisions[in.RequestID] = in.Revision
		g.mu.Unlock()
	case "/open":
		a := agentreq.Approval{ApprovalID: agentreq.ApprovalID(in.RequestID, in.Kind, "deployment", 1), RequestID: in.RequestID,
			EngagementID: in.EngagementID, Kind: in.Kind, Type: "deployment", State: agentreq.ApprovalPending, Stage: 6, Round: 1,
			Reasons: []string{"the Governor decides the deployment"}, OpenedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
			Deadline: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Format(time.RFC3339), CallbackURL: in.CallbackURL}
		st := agentreq.StatusAwaitingApproval
		if in.Kind == agentreq.KindVetoWindow {
			a.SeedID, st = "seed-1", agentreq.StatusVetoWindow
		}
		if _, err = g.fs.Collection(agentreq.Approvals).Doc(a.ApprovalID).Set(ctx, a); err == nil {
			_, err = reqRef.Update(ctx, []firestore.Update{{Path: "status", Value: st}, {Path: "approval", Value: a.Ref()}})
		}
		answer["approval_id"] = a.ApprovalID
	case "/close":
		ref := g.fs.Collection(agentreq.Approvals).Doc(in.ApprovalID)
		up := []firestore.Update{{Path: "state", Value: agentreq.ApprovalDecided}}
		if in.Outcome == "timeout" {
			snap, gerr := ref.Get(ctx)
			if gerr != nil {
				http.Error(w, gerr.Error(), 500)
				return
			}
			state := agentreq.ApprovalExpired
			if k, _ := snap.DataAt("kind"); k == agentreq.KindVetoWindow {
				state = agentreq.ApprovalImplicit
			}
			up = []firestore.Update{{Path: "state", Value: state}}
		} else {
			verdict := map[string]string{"approve": "approved", "deny": "denied", "veto": "vetoed"}[in.Callback["decision"].(string)]
			up = append(up, firestore.Update{Path: "decision", Value: verdict}, firestore.Update{Path: "decided_by", Value: in.Callback["decided_by"]})
		}
		_, err = ref.Update(ctx, up)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(answer)
}
