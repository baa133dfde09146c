package aireview

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, text  string
		wantVerdict string
		wantReasons int
		wantErr     string
	}{
		{"approve", `{"verdict": "approve", "reasons": []}`, VerdictApprove, 0, ""},
		{"escalate", ` {"verdict":"escalate","reasons":[" no rollback plan "]} `, VerdictEscalate, 1, ""},
		{"escalate without a reason", `{"verdict":"escalate","reasons":[]}`, "", 0, "without a reason"},
		{"unknown verdict", `{"verdict":"reject","reasons":["x"]}`, "", 0, `verdict "reject"`},
		{"unknown field", `{"verdict":"approve","reasons":[],"confidence":0.9}`, "", 0, "unknown field"},
		{"prose around it", "Sure! {\"verdict\":\"approve\",\"reasons\":[]}", "", 0, "unparsable"},
		{"text after it", `{"verdict":"approve","reasons":[]} thanks`, "", 0, "text after"},
		{"fenced", "```json\n{\"verdict\":\"approve\",\"reasons\":[]}\n```", "", 0, "unparsable"},
		{"empty reason", `{"verdict":"escalate","reasons":["  "]}`, "", 0, "reason 0"},
		{"too many reasons", `{"verdict":"escalate","reasons":["a","b","c","d","e","f","g","h","i"]}`, "", 0, "9 reasons"},
		{"long reason", `{"verdict":"escalate","reasons":["` + strings.Repeat("x", 501) + `"]}`, "", 0, "over 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, reasons, err := Parse(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %q, %q, %v; want an error naming %q", v, reasons, err, tt.wantErr)
				}
				return
			}
			if err != nil || v != tt.wantVerdict || len(reasons) != tt.wantReasons {
				t.Fatalf("Parse = %q, %q, %v; want %q with %d reasons", v, reasons, err, tt.wantVerdict, tt.wantReasons)
			}
			for _, r := range reasons {
				if r != strings.TrimSpace(r) {
					t.Errorf("reason %q is not trimmed", r)
				}
			}
		})
	}
}

// TestAuditContext: a prompt is kept whole up to PromptInlineMax, by hash and size beyond;
// an approval changes nothing and adds no reason; a review never asked leaves no trace.
func TestAuditContext(t *testing.T) {
	small := Review{Asked: true, Verdict: VerdictApprove, Reasons: []string{"fine"}, Prompt: "p", PromptSHA256: sum("p"),
		Provider: "groq", Model: "m", PromptTokens: 10, CompletionTokens: 5, CostUSD: 0.0000123, Reply: `{}`}
	big := small
	big.Prompt = strings.Repeat("x", PromptInlineMax+1)
	big.PromptSHA256 = sum(big.Prompt)
	big.Verdict, big.Reasons = VerdictEscalate, []string{"missing rollback"}
	failed := Review{Asked: true, Prompt: "p", PromptSHA256: sum("p"), Error: "ai: per_agent_day cap"}
	tests := []struct {
		name    string
		rv      Review
		want    map[string]string
		absent  []string
		reasons int
	}{
		{"small approval", small, map[string]string{"ai_prompt": "p", "ai_prompt_bytes": "1", "ai_changed": "false", "ai_review": "approve",
			"ai_model": "m", "ai_provider": "groq", "ai_prompt_tokens": "10", "ai_completion_tokens": "5", "ai_cost_usd": "0.000012"}, nil, 0},
		{"large escalation", big, map[string]string{"ai_prompt_sha256": sum(big.Prompt), "ai_prompt_bytes": "4097", "ai_changed": "true", "ai_review": "escalate"},
			[]string{"ai_prompt"}, 1},
		{"refused", failed, map[string]string{"ai_review": "not used: ai: per_agent_day cap", "ai_changed": "false"}, []string{"ai_model", "ai_cost_usd"}, 0},
		{"not asked", Review{}, nil, []string{"ai_review", "ai_prompt_sha256"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rv.AuditContext()
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s is set, want it absent", k)
				}
			}
			if n := len(tt.rv.AddedReasons()); n != tt.reasons {
				t.Errorf("%d reasons added, want %d", n, tt.reasons)
			}
		})
	}
}

// TestPromptScrubs: fields named like credentials never reach the prompt, at any depth.
func TestPromptScrubs(t *testing.T) {
	system, user, err := prompt("genesis", Input{Stage: 1, Outcome: "accepted", Request: map[string]any{
		"name": "helper", "api_key": "sk-1", "connectors": []any{map[string]any{"system": "crm", "Token": "t-1"}},
		"settings": map[string]any{"webhook_secret": "s-1", "tone": "formal"},
	}, Escalation: "a refusal"})
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"sk-1", "t-1", "s-1"} {
		if strings.Contains(system+user, leak) {
			t.Errorf("prompt carries %q:\n%s", leak, user)
		}
	}
	for _, keep := range []string{`"name":"helper"`, `"tone":"formal"`, `"system":"crm"`, `"table_outcome":"accepted"`} {
		if !strings.Contains(user, keep) {
			t.Errorf("prompt lacks %s:\n%s", keep, user)
		}
	}
	if !strings.Contains(system, ReplyFormat) || !strings.Contains(system, "a refusal") {
		t.Errorf("system message lacks the reply format or the escalation:\n%s", system)
	}
}
