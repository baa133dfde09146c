package registry_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/shared/events"
)

// deployResult is what the deploy workflow returns when it awaited its callback.
type deployResult struct {
	Deployed struct {
		AgentID string `json:"agent_id"`
		Outcome string `json:"outcome"`
	} `json:"deployed"`
	Health map[string]any `json:"health"`
	Second map[string]any `json:"second"`
}

// finish lets the deploy workflow's wait for a second callback time out and returns its result.
func (h *harness) finish(t testing.TB, execution string) deployResult {
	t.Helper()
	h.wf.Advance(61 * time.Second)
	h.wf.Service.WaitIdle()
	var res deployResult
	h.wf.Result(h.wf.Get(execution), &res)
	return res
}

func TestFirstHealthyDeliversTheCallbackOnce(t *testing.T) {
	h := newHarness(t)
	req, agent, execution := h.deploy(t, true)

	healthy := report(agent, engagement, "healthy", at(5))
	if got := h.pushOK(t, healthy); got != "healthy" {
		t.Errorf("first push: %s, want healthy", got)
	}
	// The same message again (a redelivery), then another healthy report: nothing more.
	if got := h.pushOK(t, healthy); got != "no_change" {
		t.Errorf("redelivery: %s, want no_change", got)
	}
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(6))); got != "no_change" {
		t.Errorf("second healthy report: %s, want no_change", got)
	}

	res := h.finish(t, execution)
	want := map[string]any{"agent_id": agent, "status": "healthy", "observed_at": at(5)}
	if !reflect.DeepEqual(res.Health, want) {
		t.Errorf("callback body %v, want %v", res.Health, want)
	}
	if res.Second != nil {
		t.Errorf("the execution received a second callback: %v", res.Second)
	}
	if res.Deployed.AgentID != agent || res.Deployed.Outcome != "deploying" {
		t.Errorf("deploy answer %+v", res.Deployed)
	}
	v := h.agent(t, agent)
	if got := types(v.Events); !reflect.DeepEqual(got, []string{"deploy_requested", "healthy", "callback_delivered"}) {
		t.Errorf("events %v", got)
	}
	if !v.Agent.CallbackDelivered || v.Agent.HealthyAt != at(5) || v.Agent.State != "deploying" {
		t.Errorf("agent %+v", v.Agent)
	}
	if v.Events[1].Cause != healthy.EventID {
		t.Errorf("healthy event caused by %q, want %q", v.Events[1].Cause, healthy.EventID)
	}
	if r := h.requestDoc(t, req); r.Status != "deploying" {
		t.Errorf("request status %s", r.Status)
	}
}

func TestReportsBeforeHealthyChangeNothing(t *testing.T) {
	h := newHarness(t)
	_, agent, execution := h.deploy(t, true)
	for _, st := range []string{"degraded", "critical", "suspended"} {
		if got := h.pushOK(t, report(agent, engagement, st, at(1))); got != "no_change" {
			t.Errorf("%s while deploying: %s, want no_change", st, got)
		}
	}
	if got := h.pushOK(t, report(agent, "eng-2", "healthy", at(2))); got != "engagement_differs" {
		t.Errorf("another engagement's report: %s", got)
	}
	if got := h.pushOK(t, report("agt-nobody", engagement, "healthy", at(2))); got != "unknown_agent" {
		t.Errorf("unknown agent: %s", got)
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested"}) {
		t.Errorf("events %v", got)
	}
	if ex := h.wf.Get(execution); ex.State != "ACTIVE" {
		t.Errorf("execution %s: %s", ex.Name, ex.State)
	}
}

func TestFailedCallbackIsRetriedByRedelivery(t *testing.T) {
	h := newHarness(t, failFirst(1))
	_, agent, execution := h.deploy(t, true)
	healthy := report(agent, engagement, "healthy", at(5))

	a := h.push(t, healthy)
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("push with the callback failing: %d %s, want 503 so Pub/Sub redelivers", a.status, a.raw)
	}
	v := h.agent(t, agent)
	if v.Agent.CallbackDelivered || v.Agent.HealthyAt != at(5) {
		t.Errorf("after a failed callback: %+v", v.Agent)
	}
	// Pub/Sub redelivers the message: now the callback goes through, once.
	if got := h.pushOK(t, healthy); got != "healthy" {
		t.Errorf("redelivery: %s, want healthy (the callback delivered now)", got)
	}
	if got := h.pushOK(t, healthy); got != "no_change" {
		t.Errorf("second redelivery: %s", got)
	}
	res := h.finish(t, execution)
	if res.Health["status"] != "healthy" || res.Second != nil {
		t.Errorf("callbacks: first %v, second %v", res.Health, res.Second)
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested", "healthy", "callback_delivered"}) {
		t.Errorf("events %v", got)
	}
}

func TestCallbackOfAnEndedExecution(t *testing.T) {
	h := newHarness(t)
	_, agent, _ := h.deploy(t, false) // the execution ends without awaiting its callback
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(5))); got != "callback_gone" {
		t.Errorf("push: %s, want callback_gone (acknowledged)", got)
	}
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(6))); got != "no_change" {
		t.Errorf("next push: %s", got)
	}
	v := h.agent(t, agent)
	if got := types(v.Events); !reflect.DeepEqual(got, []string{"deploy_requested", "healthy", "callback_gone"}) {
		t.Errorf("events %v", got)
	}
	if !v.Agent.CallbackGone || v.Agent.CallbackDelivered {
		t.Errorf("agent %+v", v.Agent)
	}
}

// live deploys an agent, delivers its healthy callback and completes the deploy.
func (h *harness) live(t testing.TB) (req, agent string) {
	t.Helper()
	req, agent, execution := h.deploy(t, true)
	if got := h.pushOK(t, report(agent, engagement, "healthy", at(1))); got != "healthy" {
		t.Fatalf("healthy: %s", got)
	}
	h.finish(t, execution)
	if a := h.post(t, "/v1/deployments/"+agent+":complete", map[string]any{"request_id": req, "at": at(2)}); a.status != http.StatusOK {
		t.Fatalf("complete: %d %s", a.status, a.raw)
	}
	return req, agent
}

func TestCriticalStreak(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name     string
		reports  []string // statuses; "dupN" redelivers report N
		outcomes []string
		state    string
		streak   int
		events   []string // after deploy_requested, healthy, callback_delivered, live
	}{
		{"three critical in a row suspend", []string{"critical", "critical", "critical"},
			[]string{"health_critical", "health_critical", "suspended"}, "suspended", 3,
			[]string{"health_critical", "health_critical", "health_critical", "suspended"}},
		{"a healthy report breaks the streak", []string{"critical", "critical", "healthy", "critical"},
			[]string{"health_critical", "health_critical", "health_ok", "health_critical"}, "live", 1,
			[]string{"health_critical", "health_critical", "health_ok", "health_critical"}},
		{"a degraded report breaks it too", []string{"critical", "critical", "degraded", "critical", "critical"},
			[]string{"health_critical", "health_critical", "health_ok", "health_critical", "health_critical"}, "live", 2,
			[]string{"health_critical", "health_critical", "health_ok", "health_critical", "health_critical"}},
		{"a redelivered critical counts once", []string{"critical", "dup0", "critical", "dup2"},
			[]string{"health_critical", "duplicate", "health_critical", "duplicate"}, "live", 2,
			[]string{"health_critical", "health_critical"}},
		{"a redelivered healthy does not break a later streak", []string{"critical", "healthy", "critical", "critical", "dup1", "critical"},
			[]string{"health_critical", "health_ok", "health_critical", "health_critical", "duplicate", "suspended"}, "suspended", 3,
			[]string{"health_critical", "health_ok", "health_critical", "health_critical", "health_critical", "suspended"}},
		{"healthy reports of a live agent change nothing", []string{"healthy", "degraded", "healthy"},
			[]string{"no_change", "no_change", "no_change"}, "live", 0, nil},
		{"reports of a suspended agent change nothing", []string{"critical", "critical", "critical", "healthy", "critical"},
			[]string{"health_critical", "health_critical", "suspended", "no_change", "no_change"}, "suspended", 3,
			[]string{"health_critical", "health_critical", "health_critical", "suspended"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, agent := h.live(t)
			sent := map[int][]byte{}
			var outcomes []string
			for i, st := range tt.reports {
				var ans answer
				if n, ok := strings.CutPrefix(st, "dup"); ok {
					ans = h.pushData(t, sent[int(n[0]-'0')])
				} else {
					data, err := events.Encode(events.TopicHealthEvents, report(agent, engagement, st, at(10+i)))
					if err != nil {
						t.Fatal(err)
					}
					sent[i] = data
					ans = h.pushData(t, data)
				}
				if ans.status != http.StatusOK {
					t.Fatalf("report %d: %d %s", i, ans.status, ans.raw)
				}
				var pa struct{ Outcome string }
				ans.decode(t, &pa)
				outcomes = append(outcomes, pa.Outcome)
			}
			if !reflect.DeepEqual(outcomes, tt.outcomes) {
				t.Errorf("outcomes %v, want %v", outcomes, tt.outcomes)
			}
			v := h.agent(t, agent)
			if v.Agent.State != tt.state || v.Agent.CriticalStreak != tt.streak {
				t.Errorf("agent %s with streak %d, want %s with %d", v.Agent.State, v.Agent.CriticalStreak, tt.state, tt.streak)
			}
			want := append([]string{"deploy_requested", "healthy", "callback_delivered", "live"}, tt.events...)
			if got := types(v.Events); !reflect.DeepEqual(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
			if r := h.requestDoc(t, req); r.Status != "deployed" {
				t.Errorf("request status %s; a suspension leaves the terminal status as it is", r.Status)
			}
		})
	}
	// Each suspension is on its engagement's audit stream, once.
	audit, _ := h.auditEvents(t)
	suspensions := 0
	for _, p := range audit {
		if p.EventType == "waooaw.agent_request.agent_suspended" {
			suspensions++
			if p.Result != "suspended" || p.Action != "health_events" || !strings.Contains(p.Context["reasons"], "3 critical") {
				t.Errorf("suspension audit %+v", p)
			}
		}
	}
	if suspensions != 3 {
		t.Errorf("%d suspensions audited, want 3", suspensions)
	}
}

func TestPoisonIsRefused(t *testing.T) {
	h := newHarness(t)
	_, agent, _ := h.deploy(t, true)
	valid := report(agent, engagement, "healthy", at(1))
	bad := func(f func(m map[string]any)) []byte {
		raw, _ := events.Encode(events.TopicHealthEvents, valid)
		var m map[string]any
		json.Unmarshal(raw, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name  string
		push  func() answer
		names string
	}{
		{"not a push", func() answer { return h.post(t, "/projects/p/topics/health_events", "{not json") }, "not a Pub/Sub push"},
		{"data not JSON", func() answer { return h.pushData(t, []byte("hello")) }, "poison"},
		{"status outside the schema", func() answer {
			return h.pushData(t, bad(func(m map[string]any) { m["data"].(map[string]any)["status"] = "fine" }))
		}, "poison"},
		{"no event_id", func() answer {
			return h.pushData(t, bad(func(m map[string]any) { m["event_id"] = "" }))
		}, "event_id"},
		{"agent ids disagree", func() answer {
			return h.pushData(t, bad(func(m map[string]any) { m["agent_id"] = "agt-other" }))
		}, "agt-other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.push()
			if a.status != http.StatusBadRequest || !strings.Contains(a.errMsg, tt.names) {
				t.Errorf("%d %q, want 400 naming %q", a.status, a.errMsg, tt.names)
			}
		})
	}
	if a := h.do(t, http.MethodGet, "/projects/p/topics/health_events", nil); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET push endpoint: %d", a.status)
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested"}) {
		t.Errorf("poison changed the agent: %v", got)
	}
}

// TestHealthEventsPushedByPubSub runs the health path as deployed: reports published on
// health_events reach the registry through the emulator's push subscription.
func TestHealthEventsPushedByPubSub(t *testing.T) {
	h := newHarness(t, pushedHealth())
	_, agent, execution := h.deploy(t, true)
	healthy := report(agent, engagement, "healthy", at(5))
	// The same event twice (a publisher's retry) and another healthy report.
	for _, env := range []events.Envelope{healthy, healthy, report(agent, engagement, "healthy", at(6))} {
		if _, err := h.pub.Publish(context.Background(), events.TopicHealthEvents, env); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the pushes: the callback is delivered once the first is taken.
	deadline := time.Now().Add(30 * time.Second)
	for !h.agent(t, agent).Agent.CallbackDelivered {
		if time.Now().After(deadline) {
			t.Fatalf("no callback delivered; agent %+v", h.agent(t, agent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.tap.Drain(t, time.Second) // the later pushes have been taken too
	h.wf.Service.WaitIdle()
	res := h.finish(t, execution)
	if res.Health["status"] != "healthy" || res.Health["observed_at"] != at(5) || res.Second != nil {
		t.Errorf("callbacks: first %v, second %v", res.Health, res.Second)
	}
	if got := types(h.agent(t, agent).Events); !reflect.DeepEqual(got, []string{"deploy_requested", "healthy", "callback_delivered"}) {
		t.Errorf("events %v", got)
	}
}
