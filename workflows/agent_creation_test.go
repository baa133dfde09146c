package workflows_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const requestID = "req-1"

// Calls as "service path".
var (
	spec        = "genesis /v1/stages/specification"
	wow         = "genesis /v1/stages/way_of_working"
	cert        = "genesis /v1/stages/certification"
	arch        = "architect /v1/stages/architecture_review"
	ethics      = "guardian /v1/stages/ethics_review"
	gov         = "genesis /v1/stages/governor_approval"
	deploy      = "registry /v1/stages/deploy"
	openApv     = "genesis /v1/approvals"
	closeGov    = "genesis /v1/approvals/apv-blocking-deployment:close"
	closeConst  = "genesis /v1/approvals/apv-blocking-constitutional-r1:close"
	closeVeto   = "genesis /v1/approvals/apv-veto_window-deployment-r1:close"
	finish      = "genesis /v1/requests/" + requestID + ":finish"
	complete    = "registry /v1/deployments/" + agentID(requestID) + ":complete"
	rollback    = "registry /v1/deployments/" + agentID(requestID) + ":rollback"
	undoDeploy  = "registry /v1/undo/deploy"
	undoEthics  = "guardian /v1/undo/ethics_review"
	undoArch    = "architect /v1/undo/architecture_review"
	undoCert    = "genesis /v1/undo/certification"
	stagesTo5   = []string{spec, wow, cert, arch, ethics}
	stageLogsTo = []string{
		"stage_1_specification=accepted/running",
		"stage_2_way_of_working=complete/running",
		"stage_3_genesis_certification=certified/running",
		"stage_4_architecture_review=approved/running",
		"stage_5_ethics_review=cleared/running",
	}
	awaitingLog = "stage_6_governor_approval=awaiting_approval/awaiting_approval"
	deployLogs  = []string{"stage_7_deploy=deploying/deploying", "await_stage_7_health=healthy/deploying"}
	deployedLog = "complete_stage_7_deploy=deployed/deployed"
)

func cat(parts ...any) []string {
	var out []string
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			out = append(out, v)
		case []string:
			out = append(out, v...)
		}
	}
	return out
}

// answers builds an answerFunc from per-call overrides keyed "service path".
func answers(m map[string]func(c call, n int) (int, any, bool)) answerFunc {
	return func(c call, n int) (int, any, bool) {
		if f := m[c.key()]; f != nil {
			return f(c, n)
		}
		return 0, nil, false
	}
}

// outcome answers a stage call with this verdict every time.
func outcome(o, status string, reasons ...string) func(call, int) (int, any, bool) {
	return func(c call, _ int) (int, any, bool) { return 200, verdict(c, o, status, reasons...), true }
}

// failing answers code for the first n calls (all of them when n < 0).
func failing(code, n int) func(call, int) (int, any, bool) {
	return func(_ call, i int) (int, any, bool) {
		if n < 0 || i < n {
			return code, map[string]any{"error": "unavailable"}, true
		}
		return 0, nil, false
	}
}

var seedMatched = func(c call, _ int) (int, any, bool) {
	v := verdict(c, "auto_approved", "deploying", "seed seed-7 matched")
	v["approval_id"], v["seed_id"], v["timeout_seconds"], v["on_timeout"], v["veto_window_seconds"] = nil, "seed-7", nil, nil, 86400
	return 200, v, true
}

type scenario struct {
	name    string
	answer  answerFunc
	down    []string
	limits  func(map[string]any)
	drive   func(t *testing.T, h *harness, ex execution)
	calls   []string
	state   string // SUCCEEDED (the default) or FAILED
	status  string // the result's status when SUCCEEDED
	agent   bool   // the result names the agent
	retried bool   // some bodies were stamped before a retry, so `at` may precede arrival
	logs    []string
	check   func(t *testing.T, h *harness, ex execution)
}

func (s scenario) run(t *testing.T) {
	h := newHarness(t, s.answer, s.down...)
	lim := limits()
	if s.limits != nil {
		s.limits(lim)
	}
	ex := h.run(requestID, lim)
	if s.drive != nil {
		s.drive(t, h, ex)
	}
	ex = h.get(ex.Name)

	calls := h.recorded()
	if got := keys(calls); !reflect.DeepEqual(got, s.calls) {
		t.Fatalf("calls:\n got %q\nwant %q\nexecution %s %s error %+v", got, s.calls, ex.State, ex.Result, ex.Error)
	}
	for i, c := range calls {
		if c.Body["request_id"] != requestID {
			t.Errorf("call %d %s: request_id %v", i, c.key(), c.Body["request_id"])
		}
		at, err := time.Parse(time.RFC3339Nano, asString(c.Body["at"]))
		if err != nil || at.After(c.Now) || (!s.retried && !at.Equal(c.Now)) {
			t.Errorf("call %d %s: at %v (%v), arrived at virtual %v", i, c.key(), c.Body["at"], err, c.Now)
		}
		if want := "Bearer OIDC:" + h.servers[c.Service].URL + c.Path; c.Auth != want {
			t.Errorf("call %d %s: Authorization %q, want %q", i, c.key(), c.Auth, want)
		}
	}
	if want := map[string]string{"engagement_id": "eng-1", "request_id": requestID}; !reflect.DeepEqual(ex.Labels, want) {
		t.Errorf("labels %v, want %v", ex.Labels, want)
	}
	state := s.state
	if state == "" {
		state = "SUCCEEDED"
	}
	if ex.State != state {
		t.Fatalf("execution %s, want %s (error %+v, result %s)", ex.State, state, ex.Error, ex.Result)
	}
	if state == "SUCCEEDED" {
		var res map[string]any
		if err := json.Unmarshal([]byte(ex.Result), &res); err != nil {
			t.Fatalf("result %q: %v", ex.Result, err)
		}
		want := map[string]any{"request_id": requestID, "status": s.status, "agent_id": nil}
		if s.agent {
			want["agent_id"] = agentID(requestID)
		}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("result %v, want %v", res, want)
		}
	}
	if got := h.transitions(ex.Name); !reflect.DeepEqual(got, s.logs) {
		t.Errorf("sys.log transitions:\n got %q\nwant %q", got, s.logs)
	}
	if s.check != nil {
		s.check(t, h, ex)
	}
}

func asString(v any) string { s, _ := v.(string); return s }

// waitsAt fails unless the execution is ACTIVE with step among its current steps.
func waitsAt(t *testing.T, h *harness, name, step string) {
	t.Helper()
	ex := h.get(name)
	if ex.State != "ACTIVE" || ex.Status == nil {
		t.Fatalf("execution %s, want ACTIVE at %s (error %+v)", ex.State, step, ex.Error)
	}
	var steps []string
	for _, s := range ex.Status.CurrentSteps {
		steps = append(steps, s.Routine+"."+s.Step)
		// The emulator names the body of a try step "<step>#try".
		if strings.TrimSuffix(s.Step, "#try") == step {
			return
		}
	}
	t.Fatalf("current steps %v, want %s", steps, step)
}

func TestAgentCreation(t *testing.T) {
	approveGov := func(t *testing.T, h *harness, ex execution) {
		waitsAt(t, h, ex.Name, "await_stage_6_governor_approval")
		h.decide(h.last(genesis, "/v1/stages/governor_approval").Body["approval_callback"], "approve")
	}
	decideConst := func(decision string) func(t *testing.T, h *harness, ex execution) {
		return func(t *testing.T, h *harness, ex execution) {
			h.decide(h.last(genesis, "/v1/approvals").Body["callback_url"], decision)
		}
	}
	steps := func(fs ...func(*testing.T, *harness, execution)) func(*testing.T, *harness, execution) {
		return func(t *testing.T, h *harness, ex execution) {
			for _, f := range fs {
				f(t, h, ex)
			}
		}
	}
	healthy := func(t *testing.T, h *harness, ex execution) {
		waitsAt(t, h, ex.Name, "await_stage_7_health")
		h.healthy()
	}
	finishBody := func(status, step, reason string) func(t *testing.T, h *harness, ex execution) {
		return func(t *testing.T, h *harness, ex execution) {
			b := h.last(genesis, "/v1/requests/").Body
			if b["status"] != status || b["step"] != step || b["reason"] != reason {
				t.Errorf("finish %v, want status %s step %s reason %q", b, status, step, reason)
			}
		}
	}
	failedWith := func(payload string) func(t *testing.T, h *harness, ex execution) {
		return func(t *testing.T, h *harness, ex execution) {
			if ex.Error == nil || !strings.Contains(ex.Error.Payload, payload) {
				t.Errorf("error %+v, want payload containing %s", ex.Error, payload)
			}
		}
	}
	vetoWindow := func(t *testing.T, h *harness, ex execution) {
		healthy(t, h, ex)
		waitsAt(t, h, ex.Name, "await_veto_window")
		b := h.last(genesis, "/v1/approvals").Body
		want := map[string]any{"kind": "veto_window", "type": "deployment", "seed_id": "seed-7", "timeout_seconds": 86400.0,
			"stage": 6.0, "round": 1.0, "engagement_id": "eng-1", "reasons": []any{"seed seed-7 matched"}}
		for k, v := range want {
			if !reflect.DeepEqual(b[k], v) {
				t.Errorf("veto window %s = %v, want %v", k, b[k], v)
			}
		}
	}

	cases := []scenario{{
		name:   "blocking approved, deployed and completed",
		drive:  steps(approveGov, healthy),
		calls:  cat(stagesTo5, gov, closeGov, deploy, complete),
		status: "deployed", agent: true,
		logs: cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=approved/deploying", deployLogs, deployedLog),
		check: func(t *testing.T, h *harness, ex execution) {
			calls := h.recorded()
			rev := calls[1].Body["revision_callback"]
			for i, c := range calls[:7] {
				if i < 5 && c.Body["round"] != 1.0 {
					t.Errorf("%s round %v", c.key(), c.Body["round"])
				}
				if _, has := c.Body["revision_callback"]; has != (i >= 1 && i <= 3) || (has && c.Body["revision_callback"] != rev) {
					t.Errorf("%s revision_callback %v (stages 2-4 carry the round's one)", c.key(), c.Body["revision_callback"])
				}
			}
			if calls[0].Body["spec"].(map[string]any)["name"] != "Ada" {
				t.Errorf("stage 1 spec %v", calls[0].Body["spec"])
			}
			cl := calls[6].Body
			cb, _ := cl["callback"].(map[string]any)
			if cl["outcome"] != "callback" || cb["decision"] != "approve" || cb["decided_by"] != "user:gov" {
				t.Errorf("close %v", cl)
			}
			if calls[7].Body["health_callback"] == nil || calls[5].Body["approval_callback"] == nil {
				t.Errorf("deploy %v / governor approval %v lack their callbacks", calls[7].Body, calls[5].Body)
			}
		},
	}, {
		name: "blocking denied",
		drive: func(t *testing.T, h *harness, ex execution) {
			h.decide(h.last(genesis, "/v1/stages/").Body["approval_callback"], "deny")
		},
		calls:  cat(stagesTo5, gov, closeGov),
		status: "denied",
		logs:   cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=denied/denied"),
	}, {
		name: "blocking approval timeout is denied",
		drive: func(t *testing.T, h *harness, ex execution) {
			h.advance(86399 * time.Second)
			waitsAt(t, h, ex.Name, "await_stage_6_governor_approval")
			h.advance(time.Second)
		},
		calls:  cat(stagesTo5, gov, closeGov),
		status: "denied",
		logs:   cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=denied/denied"),
		check: func(t *testing.T, h *harness, ex execution) {
			c := h.last(genesis, "/v1/approvals/")
			if c.Body["outcome"] != "timeout" || !c.Now.Equal(start.Add(24*time.Hour)) {
				t.Errorf("close %v at %v, want a timeout after 24 h", c.Body, c.Now)
			}
		},
	}, {
		name:   "specification rejected at stage 1",
		answer: answers(map[string]func(call, int) (int, any, bool){spec: outcome("rejected", "rejected", "spec.name is missing", "spec.industry is missing")}),
		calls:  []string{spec},
		status: "rejected",
		logs:   []string{"stage_1_specification=rejected/rejected"},
	}, {
		name: "way of working incomplete three times is rejected",
		answer: answers(map[string]func(call, int) (int, any, bool){wow: func(c call, n int) (int, any, bool) {
			if n < 2 {
				return 200, verdict(c, "revise", "needs_revision", "section integrations is missing or empty"), true
			}
			return 200, verdict(c, "rejected", "rejected", "section integrations is missing or empty"), true
		}}),
		drive: func(t *testing.T, h *harness, ex execution) {
			for r := 1; r <= 2; r++ {
				waitsAt(t, h, ex.Name, "await_revision_callback")
				h.callback(h.last(genesis, "/v1/stages/way_of_working").Body["revision_callback"], map[string]any{
					"spec": map[string]any{"name": "Ada", "revision": r}, "way_of_working": map[string]any{"integrations": []any{"crm"}}})
			}
		},
		calls:  []string{spec, wow, spec, wow, spec, wow},
		status: "rejected",
		logs: []string{"stage_1_specification=accepted/running", "stage_2_way_of_working=revise/needs_revision", "await_revision=revised/running",
			"stage_1_specification=accepted/running", "stage_2_way_of_working=revise/needs_revision", "await_revision=revised/running",
			"stage_1_specification=accepted/running", "stage_2_way_of_working=rejected/rejected"},
		check: func(t *testing.T, h *harness, ex execution) {
			calls := h.recorded()
			seen := map[any]bool{}
			for i, c := range calls {
				round := float64(i/2 + 1)
				if c.Body["round"] != round {
					t.Errorf("call %d round %v, want %v", i, c.Body["round"], round)
				}
				if want := round - 1; round > 1 && c.Body["spec"].(map[string]any)["revision"] != want {
					t.Errorf("call %d spec %v, want revision %v", i, c.Body["spec"], want)
				}
				if c.Service == genesis && c.Path == "/v1/stages/way_of_working" {
					if seen[c.Body["revision_callback"]] {
						t.Errorf("round %v reuses revision callback %v", round, c.Body["revision_callback"])
					}
					seen[c.Body["revision_callback"]] = true
				}
			}
		},
	}, {
		name:   "no revision in time is rejected",
		answer: answers(map[string]func(call, int) (int, any, bool){wow: outcome("revise", "needs_revision", "gap")}),
		drive: func(t *testing.T, h *harness, ex execution) {
			h.advance(259199 * time.Second)
			waitsAt(t, h, ex.Name, "await_revision_callback")
			h.advance(time.Second)
		},
		calls:  []string{spec, wow, finish},
		status: "rejected",
		logs: []string{"stage_1_specification=accepted/running", "stage_2_way_of_working=revise/needs_revision",
			"await_revision=timeout/needs_revision", "finish_await_revision=recorded/rejected"},
		check: finishBody("rejected", "await_revision", "no revision within 259200 s"),
	}, {
		name:   "revise in the last round is rejected",
		answer: answers(map[string]func(call, int) (int, any, bool){arch: outcome("revise", "needs_revision", "gap")}),
		limits: func(l map[string]any) { l["max_rounds"] = 1 },
		calls:  []string{spec, wow, cert, arch, finish},
		status: "rejected",
		logs:   cat(stageLogsTo[:3], "stage_4_architecture_review=revise/needs_revision", "finish_await_revision=recorded/rejected"),
		check:  finishBody("rejected", "await_revision", "stage 4 asked for a revision in the last round (1)"),
	}, {
		name:   "reclassified at stage 3, constitutional approval approved, stage 4 goes on",
		answer: answers(map[string]func(call, int) (int, any, bool){cert: outcome("reclassify", "awaiting_approval", "constitutional change")}),
		drive: steps(decideConst("approve"), func(t *testing.T, h *harness, ex execution) {
			h.decide(h.last(genesis, "/v1/stages/governor_approval").Body["approval_callback"], "deny")
		}),
		calls:  []string{spec, wow, cert, openApv, closeConst, arch, ethics, gov, closeGov},
		status: "denied",
		logs: cat(stageLogsTo[:2], "stage_3_genesis_certification=reclassify/awaiting_approval", "stage_3_constitutional_approval=opened/<nil>",
			"close_stage_3_constitutional_approval=approved/running", stageLogsTo[3:], awaitingLog, "close_stage_6_governor_approval=denied/denied"),
		check: func(t *testing.T, h *harness, ex execution) {
			b := h.recorded()[3].Body
			if b["kind"] != "blocking" || b["type"] != "constitutional" || b["stage"] != 3.0 || b["seed_id"] != nil ||
				!reflect.DeepEqual(b["reasons"], []any{"constitutional change"}) {
				t.Errorf("constitutional approval opened with %v", b)
			}
		},
	}, {
		name:   "reclassified at stage 3, constitutional approval denied",
		answer: answers(map[string]func(call, int) (int, any, bool){cert: outcome("reclassify", "awaiting_approval")}),
		drive:  decideConst("deny"),
		calls:  []string{spec, wow, cert, openApv, closeConst},
		status: "denied",
		logs: cat(stageLogsTo[:2], "stage_3_genesis_certification=reclassify/awaiting_approval", "stage_3_constitutional_approval=opened/<nil>",
			"close_stage_3_constitutional_approval=denied/denied"),
	}, {
		name:   "escalated at stage 5, constitutional approval approved, stage 6 goes on",
		answer: answers(map[string]func(call, int) (int, any, bool){ethics: outcome("escalate", "awaiting_approval", "sensitive industry")}),
		drive:  steps(decideConst("approve"), approveGov, healthy),
		calls:  cat(stagesTo5, openApv, closeConst, gov, closeGov, deploy, complete),
		status: "deployed", agent: true,
		logs: cat(stageLogsTo[:4], "stage_5_ethics_review=escalate/awaiting_approval", "stage_5_constitutional_approval=opened/<nil>",
			"close_stage_5_constitutional_approval=approved/running", awaitingLog, "close_stage_6_governor_approval=approved/deploying",
			deployLogs, deployedLog),
		check: func(t *testing.T, h *harness, ex execution) {
			if b := h.recorded()[5].Body; b["stage"] != 5.0 || b["type"] != "constitutional" {
				t.Errorf("escalation opened %v", b)
			}
		},
	}, {
		name:   "escalated at stage 5, constitutional approval denied",
		answer: answers(map[string]func(call, int) (int, any, bool){ethics: outcome("escalate", "awaiting_approval")}),
		drive:  decideConst("deny"),
		calls:  cat(stagesTo5, openApv, closeConst),
		status: "denied",
		logs: cat(stageLogsTo[:4], "stage_5_ethics_review=escalate/awaiting_approval", "stage_5_constitutional_approval=opened/<nil>",
			"close_stage_5_constitutional_approval=denied/denied"),
	}, {
		name:   "escalated at stage 5, nobody decides: the constitutional approval times out denied",
		answer: answers(map[string]func(call, int) (int, any, bool){ethics: outcome("escalate", "awaiting_approval")}),
		drive:  func(t *testing.T, h *harness, ex execution) { h.advance(48 * time.Hour) },
		calls:  cat(stagesTo5, openApv, closeConst),
		status: "denied",
		logs: cat(stageLogsTo[:4], "stage_5_ethics_review=escalate/awaiting_approval", "stage_5_constitutional_approval=opened/<nil>",
			"close_stage_5_constitutional_approval=denied/denied"),
		check: func(t *testing.T, h *harness, ex execution) {
			if c := h.last(genesis, "/v1/approvals/"); c.Body["outcome"] != "timeout" || !c.Now.Equal(start.Add(48*time.Hour)) {
				t.Errorf("close %v at %v", c.Body, c.Now)
			}
		},
	}, {
		name:   "seed path without a veto: implicit approval after 24 h, completed",
		answer: answers(map[string]func(call, int) (int, any, bool){gov: seedMatched}),
		drive: steps(vetoWindow, func(t *testing.T, h *harness, ex execution) {
			h.advance(24*time.Hour - time.Second)
			waitsAt(t, h, ex.Name, "await_veto_window")
			h.advance(time.Second)
		}),
		calls:  cat(stagesTo5, gov, deploy, openApv, closeVeto, complete),
		status: "deployed", agent: true,
		logs: cat(stageLogsTo, "stage_6_governor_approval=auto_approved/deploying", deployLogs, "open_veto_window=opened/<nil>",
			"close_veto_window=implicit/veto_window", deployedLog),
		check: func(t *testing.T, h *harness, ex execution) {
			if c := h.last(genesis, "/v1/approvals/"); c.Body["outcome"] != "timeout" || !c.Now.Equal(start.Add(24*time.Hour)) {
				t.Errorf("close %v at %v", c.Body, c.Now)
			}
		},
	}, {
		name:   "seed path vetoed at hour 23: undo 7, 5, 4, 3",
		answer: answers(map[string]func(call, int) (int, any, bool){gov: seedMatched}),
		drive: steps(vetoWindow, func(t *testing.T, h *harness, ex execution) {
			h.advance(23 * time.Hour)
			h.decide(h.last(genesis, "/v1/approvals").Body["callback_url"], "veto")
		}),
		calls:  cat(stagesTo5, gov, deploy, openApv, closeVeto, undoDeploy, undoEthics, undoArch, undoCert),
		status: "vetoed", agent: true,
		logs: cat(stageLogsTo, "stage_6_governor_approval=auto_approved/deploying", deployLogs, "open_veto_window=opened/<nil>",
			"close_veto_window=vetoed/vetoed", "undo_stage_7_deploy=undeployed/vetoed", "undo_stage_5_ethics_review=withdrawn/vetoed",
			"undo_stage_4_architecture_review=undone/vetoed", "undo_stage_3_genesis_certification=undone/vetoed"),
		check: func(t *testing.T, h *harness, ex execution) {
			for _, c := range h.recorded()[9:] {
				if c.Body["approval_id"] != "apv-veto_window-deployment-r1" || c.Body["engagement_id"] != "eng-1" || !c.Now.Equal(start.Add(23*time.Hour)) {
					t.Errorf("%s: %v at %v", c.key(), c.Body, c.Now)
				}
			}
		},
	}, {
		name:    "a healthy event delivered before the workflow awaits it is kept",
		answer:  answers(map[string]func(call, int) (int, any, bool){deploy: failing(503, 1)}),
		retried: true,
		drive: steps(approveGov, func(t *testing.T, h *harness, ex execution) {
			// The registry recorded the deploy and saw the agent healthy, but its first answer
			// was lost: the event reaches the callback while the workflow backs off.
			waitsAt(t, h, ex.Name, "post")
			h.healthy()
			h.advance(2 * time.Second)
		}),
		calls:  cat(stagesTo5, gov, closeGov, deploy, deploy, complete),
		status: "deployed", agent: true,
		logs: cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=approved/deploying", deployLogs, deployedLog),
	}, {
		name: "no healthy event: rolled back, failed",
		drive: steps(approveGov, func(t *testing.T, h *harness, ex execution) {
			h.advance(1799 * time.Second)
			waitsAt(t, h, ex.Name, "await_stage_7_health")
			h.advance(time.Second)
		}),
		calls:  cat(stagesTo5, gov, closeGov, deploy, rollback, finish),
		status: "failed", agent: true,
		logs: cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=approved/deploying", "stage_7_deploy=deploying/deploying",
			"await_stage_7_health=timeout/deploying", "rollback_stage_7_deploy=rolled_back/deploying", "finish_stage_7_deploy=recorded/failed"),
		check: steps(finishBody("failed", "stage_7_deploy", "no healthy health event within 1800 s; rolled back"),
			func(t *testing.T, h *harness, ex execution) {
				if r := h.last(registry, "/v1/deployments/"); r.Body["reason"] != "no healthy health event within 1800 s" {
					t.Errorf("rollback %v", r.Body)
				}
			}),
	}, {
		name:    "503 twice then 200: retried, one verdict",
		answer:  answers(map[string]func(call, int) (int, any, bool){arch: failing(503, 2), ethics: outcome("rejected", "rejected", "forbidden purpose")}),
		retried: true,
		drive: func(t *testing.T, h *harness, ex execution) {
			waitsAt(t, h, ex.Name, "post")
			h.advance(2 * time.Second)
			h.advance(6 * time.Second)
		},
		calls:  []string{spec, wow, cert, arch, arch, arch, ethics},
		status: "rejected",
		logs:   cat(stageLogsTo[:4], "stage_5_ethics_review=rejected/rejected"),
		check: func(t *testing.T, h *harness, ex execution) {
			calls := h.recorded()
			for i, want := range []time.Duration{0, 2 * time.Second, 8 * time.Second} {
				c := calls[3+i]
				if !c.Now.Equal(start.Add(want)) || !reflect.DeepEqual(c.Body, calls[3].Body) {
					t.Errorf("attempt %d at %v with %v", i+1, c.Now, c.Body)
				}
			}
		},
	}, {
		name:    "a stand-in refusing connections for 20 s: retried, one verdict",
		down:    []string{guardian},
		retried: true,
		drive: func(t *testing.T, h *harness, ex execution) {
			for _, d := range []time.Duration{2, 6, 12} {
				waitsAt(t, h, ex.Name, "post")
				h.advance(d * time.Second)
			}
			h.bringUp(guardian)
			h.advance(6 * time.Second)
			h.decide(h.last(genesis, "/v1/stages/governor_approval").Body["approval_callback"], "deny")
		},
		calls:  cat(stagesTo5, gov, closeGov),
		status: "denied",
		logs:   cat(stageLogsTo, awaitingLog, "close_stage_6_governor_approval=denied/denied"),
		check: func(t *testing.T, h *harness, ex execution) {
			c := h.last(guardian, "/v1/stages/")
			if !c.Now.Equal(start.Add(26*time.Second)) || c.Body["at"] != start.Format("2006-01-02T15:04:05.000000Z07:00") {
				t.Errorf("stage 5 arrived at %v with at %v, want the fourth attempt after 26 s of a call stamped at the start", c.Now, c.Body["at"])
			}
		},
	}, {
		name:   "a permanent 500 fails the request naming the step",
		answer: answers(map[string]func(call, int) (int, any, bool){ethics: failing(500, -1)}),
		calls:  cat(stagesTo5, finish),
		state:  "FAILED",
		logs:   cat(stageLogsTo[:4], "stage_5_ethics_review=error/failed", "finish_stage_5_ethics_review=recorded/failed"),
		check: steps(finishBody("failed", "stage_5_ethics_review", "HTTP server responded with error code 500"),
			failedWith(`"code":500`)),
	}, {
		name:   "a permanent 500 whose failure genesis cannot record still fails",
		answer: answers(map[string]func(call, int) (int, any, bool){ethics: failing(500, -1), finish: failing(400, -1)}),
		calls:  cat(stagesTo5, finish),
		state:  "FAILED",
		logs:   cat(stageLogsTo[:4], "stage_5_ethics_review=error/failed", "finish_stage_5_ethics_review=error/failed"),
		check:  failedWith(`"code":500`),
	}, {
		name:    "503 on every retry fails the request after 26 s",
		answer:  answers(map[string]func(call, int) (int, any, bool){arch: failing(503, -1)}),
		retried: true,
		drive: func(t *testing.T, h *harness, ex execution) {
			for _, d := range []time.Duration{2, 6, 18} {
				h.advance(d * time.Second)
			}
		},
		calls: []string{spec, wow, cert, arch, arch, arch, arch, finish},
		state: "FAILED",
		logs:  cat(stageLogsTo[:3], "stage_4_architecture_review=error/failed", "finish_stage_4_architecture_review=recorded/failed"),
		check: steps(finishBody("failed", "stage_4_architecture_review", "HTTP server responded with error code 503"), failedWith(`"code":503`),
			func(t *testing.T, h *harness, ex execution) {
				if c := h.last(genesis, "/v1/requests/"); !c.Now.Equal(start.Add(26 * time.Second)) {
					t.Errorf("finish at %v, want after 26 s", c.Now)
				}
			}),
	}, {
		name:   "an outcome outside the contract fails the request naming the step",
		answer: answers(map[string]func(call, int) (int, any, bool){arch: outcome("maybe", "running")}),
		calls:  []string{spec, wow, cert, arch, finish},
		state:  "FAILED",
		logs:   cat(stageLogsTo[:3], "stage_4_architecture_review=maybe/running", "finish_stage_4_architecture_review=recorded/failed"),
		check: steps(finishBody("failed", "stage_4_architecture_review", `unexpected outcome "maybe"`),
			failedWith("stage_4_architecture_review")),
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// BenchmarkBlockingPathDeployed runs one request through the blocking path (approve, healthy
// event, complete) per iteration on one emulator and its stand-ins.
func BenchmarkBlockingPathDeployed(b *testing.B) {
	h := newHarness(b, nil)
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("req-bench-%d", i)
		ex := h.run(id, limits())
		calls := h.recorded()
		var approval, health any
		for _, c := range calls {
			if c.Body["request_id"] == id && c.Path == "/v1/stages/governor_approval" {
				approval = c.Body["approval_callback"]
			}
		}
		h.decide(approval, "approve")
		for _, c := range h.recorded() {
			if c.Body["request_id"] == id && c.Path == "/v1/stages/deploy" {
				health = c.Body["health_callback"]
			}
		}
		h.callback(health, map[string]any{"agent_id": agentID(id), "status": "healthy"})
		if ex = h.get(ex.Name); ex.State != "SUCCEEDED" || !strings.Contains(ex.Result, `"deployed"`) {
			b.Fatalf("%s: %s %s", id, ex.State, ex.Result)
		}
	}
}
