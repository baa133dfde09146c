package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// TestInputSHA256IsRFC8785 recomputes input hashes as a holder of the input would: its JSON
// text through another RFC 8785 implementation (github.com/gowebpki/jcs), then sha256.
func TestInputSHA256IsRFC8785(t *testing.T) {
	type subject struct {
		ID   string `json:"id"`
		Role string `json:"role"`
	}
	tests := []struct {
		name  string
		input any
	}{
		{"gateway request", map[string]any{
			"subject":  map[string]any{"id": "gov-1", "type": "user", "role": "governor"},
			"action":   "veto",
			"resource": map[string]any{"type": "approval", "id": "ap-1", "engagement_id": "eng-1"},
		}},
		{"pdp request, numbers as json.Number", map[string]any{
			"amount": json.Number("12.50"), "limit": json.Number("1E3"), "level": json.Number("-0"), "big": json.Number("9007199254740992"),
		}},
		{"escapes and non-ASCII keys", map[string]any{"\b\f\x01\x7f\u2028": "<&>", "\U0001f600": 1, "\uff21": 2, "é": []string{"\t"}}},
		{"floats across magnitudes", []any{1e21, 1e-7, 5e-324, math.MaxFloat64, math.Copysign(0, -1), 0.1, 123456789.125}},
		{"struct", struct {
			Subject subject `json:"subject"`
			Action  string  `json:"action"`
		}{subject{"u1", "viewer"}, "read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := jcs.Transform(raw)
			if err != nil {
				t.Fatalf("jcs.Transform(%s): %v", raw, err)
			}
			want := sha256.Sum256(ref)
			got, err := InputSHA256(tt.input)
			if err != nil || got != hex.EncodeToString(want[:]) {
				t.Fatalf("InputSHA256 = %s, %v; want sha256 of %s", got, err, ref)
			}
		})
	}
}

// An input RFC 8785 cannot write exactly is refused, not hashed in a form nobody can
// recompute.
func TestInputSHA256Refuses(t *testing.T) {
	tests := []struct {
		name  string
		input any
	}{
		{"NaN", map[string]any{"a": math.NaN()}},
		{"not UTF-8", map[string]any{"subject": map[string]any{"id": "u\xff"}}},
		{"not UTF-8 key", map[string]string{"\xc3": "v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if sum, err := InputSHA256(tt.input); !errors.Is(err, ErrBadInput) || sum != "" {
				t.Fatalf("InputSHA256 = %q, %v; want ErrBadInput", sum, err)
			}
			var in Input
			if err := in.Set(tt.input); !errors.Is(err, ErrBadInput) {
				t.Fatalf("Input.Set err = %v; want ErrBadInput", err)
			}
		})
	}
}

// BenchmarkInputSHA256 is the hash of one gateway-shaped input, and of one that arrived as
// JSON with numbers kept as json.Number (the pdp's).
func BenchmarkInputSHA256(b *testing.B) {
	inputs := map[string]any{
		"gateway": map[string]any{
			"subject":  map[string]any{"id": "gov-042", "role": "role-042", "type": "user"},
			"action":   "approve",
			"resource": map[string]any{"type": "approval", "id": "ap-42", "engagement_id": "eng-294"},
		},
		"pdp": map[string]any{
			"subject":  map[string]any{"id": "u-7", "role": "viewer", "level": json.Number("3")},
			"action":   "spend",
			"resource": map[string]any{"type": "budget", "amount": json.Number("12.5"), "limit": json.Number("100")},
		},
	}
	for _, name := range []string{"gateway", "pdp"} {
		in := inputs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := inputSum(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A number a double would round is hashed as RFC 8785 implementations hash it (rounded), and
// a decision about it is never cached: its hash is its rounded twin's.
func TestRoundedNumbersHashLikeJCSAndSkipTheCache(t *testing.T) {
	const text = `{"action":"read","n":9007199254740993,"resource":{"type":"audit_stream"},"subject":{"id":"u","role":"viewer"}}`
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var input any
	if err := dec.Decode(&input); err != nil {
		t.Fatal(err)
	}
	ref, err := jcs.Transform([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(ref)
	got, err := InputSHA256(input)
	if err != nil || got != hex.EncodeToString(want[:]) {
		t.Fatalf("InputSHA256 = %s, %v; want %x, the sha256 of jcs's %s", got, err, want, ref)
	}
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		d, err := e.Decide(t.Context(), "rbac", RuleDecision, input, Meta{EnforcementPoint: "test"})
		if err != nil || d.Cached || d.InputSHA256 != got {
			t.Fatalf("decision %d: cached %v, input hash %s, err %v; want uncached with hash %s", i, d.Cached, d.InputSHA256, err, got)
		}
	}
	exact := map[string]any{"action": "read", "n": json.Number("9007199254740992"), "resource": map[string]any{"type": "audit_stream"}, "subject": map[string]any{"id": "u", "role": "viewer"}}
	for i, wantCached := range []bool{false, true} {
		d, err := e.Decide(t.Context(), "rbac", RuleDecision, exact, Meta{EnforcementPoint: "test"})
		if err != nil || d.Cached != wantCached {
			t.Fatalf("exact input, decision %d: cached %v, err %v; want cached %v", i, d.Cached, err, wantCached)
		}
	}
}
