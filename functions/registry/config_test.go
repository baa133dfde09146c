package registry_test

import (
	"strings"
	"testing"

	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/shared/config"
)

func TestConfigFrom(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want registry.Config
		errs []string // named in the error
	}{
		{"production", map[string]string{"GOOGLE_CLOUD_PROJECT": "p"}, registry.Config{Project: "p"}, nil},
		{"local stack", map[string]string{"GOOGLE_CLOUD_PROJECT": "p", "WAOOAW_WORKFLOWS_URL": "http://127.0.0.1:9"},
			registry.Config{Project: "p", WorkflowsURL: "http://127.0.0.1:9"}, nil},
		{"nothing set", map[string]string{}, registry.Config{}, []string{"GOOGLE_CLOUD_PROJECT"}},
		{"every fault at once", map[string]string{"WAOOAW_WORKFLOWS_URL": "ftp://x"}, registry.Config{},
			[]string{"GOOGLE_CLOUD_PROJECT", "WAOOAW_WORKFLOWS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ConfigFrom(config.FromMap(tt.env))
			if len(tt.errs) == 0 {
				if err != nil || got != tt.want {
					t.Errorf("ConfigFrom = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ConfigFrom accepted %v", tt.env)
			}
			for _, name := range tt.errs {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}
