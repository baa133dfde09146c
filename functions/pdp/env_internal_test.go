package pdp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/config"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/policy/eventsink"
	"waooaw.dev/governance/shared/startup"
)

func TestOptions(t *testing.T) {
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
		name string
		env  map[string]string
		opts int
		errs []string // every variable the error must name
	}{
		{"none", nil, 0, nil},
		{"all", map[string]string{EnvDataFile: good, EnvCacheSize: "0", EnvPolicyDir: dir}, 3, nil},
		{"missing file", map[string]string{EnvDataFile: filepath.Join(dir, "nope.json")}, 0, []string{EnvDataFile}},
		{"bad JSON", map[string]string{EnvDataFile: bad}, 0, []string{EnvDataFile}},
		{"bad cache size", map[string]string{EnvCacheSize: "-1"}, 0, []string{EnvCacheSize}},
		{"policy dir is a file", map[string]string{EnvPolicyDir: good}, 0, []string{EnvPolicyDir}},
		{"every problem at once", map[string]string{EnvDataFile: bad, EnvCacheSize: "lots", EnvPolicyDir: good}, 0,
			[]string{EnvDataFile, EnvCacheSize, EnvPolicyDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := Options(config.FromMap(tc.env))
			if len(tc.errs) > 0 {
				if !config.IsConfigError(err) {
					t.Fatalf("err = %v, want a config error", err)
				}
				for _, name := range tc.errs {
					if !strings.Contains(err.Error(), name) {
						t.Errorf("err %q does not name %s", err, name)
					}
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
	env := &startup.Env{Env: config.FromMap(nil)}
	s, err := newSink(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*policy.WriterSink); !ok {
		t.Fatalf("without a project: %T, want the stdout writer", s)
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1") // the client dials lazily
	env.Project = "waooaw-test"
	s, err = newSink(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*eventsink.Sink); !ok {
		t.Fatalf("with a project: %T, want the policy_attestations publisher", s)
	}
}
