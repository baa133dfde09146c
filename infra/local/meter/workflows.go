package meter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Workflows reads the Workflows emulator at baseURL ("http://host:port") at each Snapshot:
// its step counters for every execution since it started (GET /emulator/v1/usage), as
// workflows.{executions,steps,internal_steps,external_steps,http_calls,
// external_http_calls,callback_waits}.
func (m *Meter) Workflows(baseURL string) {
	url := strings.TrimSuffix(baseURL, "/") + "/emulator/v1/usage"
	m.AddSource("workflows", func(ctx context.Context) (map[string]int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: HTTP %d %s: %v", url, resp.StatusCode, b, err)
		}
		var u struct {
			Executions        int64 `json:"executions"`
			Steps             int64 `json:"steps"`
			InternalSteps     int64 `json:"internalSteps"`
			ExternalSteps     int64 `json:"externalSteps"`
			HTTPCalls         int64 `json:"httpCalls"`
			ExternalHTTPCalls int64 `json:"externalHttpCalls"`
			CallbackWaits     int64 `json:"callbackWaits"`
		}
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, fmt.Errorf("GET %s: %w", url, err)
		}
		return map[string]int64{
			"executions": u.Executions, "steps": u.Steps, "internal_steps": u.InternalSteps,
			"external_steps": u.ExternalSteps, "http_calls": u.HTTPCalls,
			"external_http_calls": u.ExternalHTTPCalls, "callback_waits": u.CallbackWaits,
		}, nil
	})
}
