package pdp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
)

func TestEnvOptions(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "data.json")
	if err := os.WriteFile(good, []byte(`{"engagements": {"eng-1": {"governor": "gov-1"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`[`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data, cache string
		opts              int
		err               string
	}{
		{"none", "", "", 0, ""},
		{"both", good, "0", 2, ""},
		{"missing file", filepath.Join(dir, "nope.json"), "", 0, "PDP_DATA_FILE"},
		{"bad JSON", bad, "", 0, "PDP_DATA_FILE"},
		{"bad cache size", "", "-1", 0, "PDP_CACHE_SIZE"},
		{"cache size not a number", "", "lots", 0, "PDP_CACHE_SIZE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PDP_DATA_FILE", tc.data)
			t.Setenv("PDP_CACHE_SIZE", tc.cache)
			opts, err := envOptions()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || len(opts) != tc.opts {
				t.Fatalf("opts %d, err %v; want %d options", len(opts), err, tc.opts)
			}
		})
	}
}

func TestNewSinkPicksPubSubWhenAProjectIsSet(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	s, closer, err := newSink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	closer()
	if _, ok := s.(*policy.WriterSink); !ok {
		t.Fatalf("without a project: %T, want the stdout writer", s)
	}
	t.Setenv("GOOGLE_CLOUD_PROJECT", "waooaw-test")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1") // the client dials lazily
	s, closer, err = newSink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	if _, ok := s.(*eventsink.Sink); !ok {
		t.Fatalf("with a project: %T, want the policy_attestations publisher", s)
	}
}
