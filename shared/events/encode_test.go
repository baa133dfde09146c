package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/schema"
)

// TestEncodeMatchesMarshal checks the envelope Encode writes by hand against json.Marshal of
// the same envelope: same document before the schema check, same bytes after it.
func TestEncodeMatchesMarshal(t *testing.T) {
	base := health(t)
	tricky := base
	tricky.Source, tricky.Actor, tricky.CausationID = "<//x&y>", "client:\u2028é\xff\"\\\n", "c\x00"
	spaced := base
	spaced.Data = json.RawMessage(" {\n\"agent_id\" : \"agent-7\", \"engagement_id\":\"eng-1\",\"status\":\"critical\",\"check_type\":\"http\",\"observed_at\":\"2026-11-26T10:00:00Z\"} ")
	tests := []struct {
		name string
		e    Envelope
	}{{"plain", base}, {"escapes", tricky}, {"data with spaces", spaced}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := json.Marshal(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := json.Unmarshal(ref, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(envelopeJSON(nil, tt.e), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("envelope\n got %v\nwant %v", got, want)
			}
			wantOut, err := schema.Default().Normalize(TopicHealthEvents, ref)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Encode(TopicHealthEvents, tt.e)
			if err != nil || !bytes.Equal(out, wantOut) {
				t.Fatalf("Encode = %s, %v\nwant     %s", out, err, wantOut)
			}
		})
	}
}

func TestEncodeRefusesBadData(t *testing.T) {
	tests := []struct {
		name string
		data json.RawMessage
		want string
	}{
		{"none", nil, "data: must be an object, got null"},
		{"not JSON", json.RawMessage(`{"agent_id":`), "events: marshal"},
		{"extra bracket", json.RawMessage(`{"agent_id":"a"}}`), "events: marshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := health(t)
			e.Data = tt.data
			if _, err := Encode(TopicHealthEvents, e); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
